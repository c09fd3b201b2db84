import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import Testing

/// An upstream stream that ends cleanly but without its format's end is a cut, not an answer (issue 11 item 2,
/// review finding 6): the gateway must never relay it as a complete answer with `[DONE]`.
@Suite("Truncated upstream streams through the gateway")
struct TruncatedStreamTests {
    @Test("a stream that ends after content without finish_reason or [DONE] ends in an error event")
    func truncatedAfterContent() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .missingTerminator(text: "one two three"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            #expect(answer.events.last != "[DONE]")
            #expect(!answer.events.contains("[DONE]"))
            let error = try #require(answer.chunks.last?["error"] as? [String: Any])
            #expect((error["message"] as? String)?.isEmpty == false)
            let finishes = answer.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
            #expect(!finishes.contains("unterminated"))
            #expect(finishes.isEmpty)
        }
    }

    @Test("a stream that ends before any content fails over to the backup")
    func truncatedBeforeContent() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: ": ping\n\n"))
            server.script("model-backup", .text("from the backup"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.events.last == "[DONE]")
            #expect(answer.streamedText == "from the backup")
        }
    }
}
