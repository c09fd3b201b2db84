import NIOCore
import Testing

@testable import LLMFallback

/// What a decoded stream adds up to, for the adapters' stream tests.
struct StreamSummary: Equatable, CustomStringConvertible {
    struct Call: Equatable {
        var id: String?
        var name: String?
        var arguments = ""
    }
    var text = ""
    var toolCalls: [Int: Call] = [:]
    var finishReasons: [FinishReason] = []
    var usage: Usage?
    var usageCount = 0
    var isComplete = false
    var ids: Set<String> = []
    var models: Set<String> = []

    var description: String {
        "text: \(text.debugDescription), calls: \(toolCalls), finish: \(finishReasons), usage: \(String(describing: usage)) x\(usageCount), complete: \(isComplete)"
    }

    /// Feeds `pieces` of `stream` through a parser and `adapter`'s decoder and sums up the chunks.
    static func decode(_ stream: String, in pieces: [[UInt8]], adapter: any ProviderAdapter, provider: ResolvedProvider) throws -> StreamSummary {
        #expect(pieces.joined().elementsEqual(stream.utf8))
        var parser = ServerSentEventParser()
        var decoder = adapter.makeStreamDecoder(for: provider)
        var summary = StreamSummary()
        for piece in pieces {
            var events: [ServerSentEvent] = []
            try parser.feed(piece, into: &events)
            for event in events {
                guard let chunk = try decoder.decode(event) else { continue }
                #expect(chunk.provider == provider.kind.name)
                summary.text += chunk.content
                for delta in chunk.toolCallDeltas {
                    var call = summary.toolCalls[delta.index] ?? Call()
                    if let id = delta.id { call.id = id }
                    if let name = delta.name { call.name = name }
                    call.arguments += delta.arguments
                    summary.toolCalls[delta.index] = call
                }
                if let finish = chunk.finishReason { summary.finishReasons.append(finish) }
                if let usage = chunk.usage {
                    summary.usage = usage
                    summary.usageCount += 1
                }
                if let id = chunk.id { summary.ids.insert(id) }
                summary.models.insert(chunk.model)
            }
        }
        #expect(!parser.hasPendingEvent)
        summary.isComplete = decoder.isComplete
        return summary
    }
}
