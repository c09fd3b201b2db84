import Foundation
import NIOCore
import LLMFallbackTesting
import Testing

@testable import LLMFallback

@Suite struct StreamingFailoverTests {
    static let faultsBeforeContent: [MockBehavior] = [
        .status(500), .status(429), .reset, .cutStream(afterChunks: 0), .malformedChunk(afterChunks: 0), .streamError(afterChunks: 0),
    ]

    @Test(arguments: Format.allCases)
    func everyFaultBeforeTheFirstTokenFailsOverTransparently(_ format: Format) async throws {
        try await withServer { server in
            for (offset, fault) in Self.faultsBeforeContent.enumerated() {
                let primary = "p\(offset)"
                let backup = "b\(offset)"
                server.script(primary, fault)
                server.script(backup, .text("clean answer from backup"))
                let chain = FallbackChain([format.provider(server, model: primary), format.provider(server, model: backup)], configuration: config())
                var chunks: [ChatChunk] = []
                for try await chunk in chain.stream("hi") { chunks.append(chunk) }
                #expect(chunks.map(\.content).joined() == "clean answer from backup", "\(format) fault \(offset)")
                #expect(chunks.filter(\.hasContent).allSatisfy { $0.model == backup })
                #expect(chunks.filter(\.hasContent).allSatisfy { $0.attempts == 2 && $0.providerName == "\(format.rawValue)/\(backup)" })
                #expect(!chunks.contains { $0.kind == .restart })
            }
        }
    }

    @Test func noFirstTokenInTimeFailsOver() async throws {
        try await withServer { server in
            server.script("slow", .hang)
            server.script("backup", .text("fast answer"))
            let clock = ManualClock()
            var configuration = config()
            configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(2))
            let chain = FallbackChain([Format.openAI.provider(server, model: "slow"), Format.openAI.provider(server, model: "backup")], configuration: configuration, clock: clock)
            let task = Task { try await chain.stream("hi").collect() }
            try await server.waitForRequests(1, model: "slow")
            try await clock.waitForSleepers(1)  // the stream's watchdog
            clock.advance(by: .seconds(2))
            let response = try await task.value
            #expect(response.content == "fast answer")
            #expect(chain.healthReport()[0].failuresByClass["timeout"] == 1)
            try await server.waitForAbandonedRequests(1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aProvidersOwnStreamLimitsWinOverTheChains() async throws {
        try await withServer { server in
            server.script("slow", .hang)
            server.script("backup", .text("fast answer"))
            let clock = ManualClock()
            var configuration = config()
            configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(60))
            var slow = Format.openAI.provider(server, model: "slow")
            slow.streamTimeouts = StreamTimeouts(firstToken: .seconds(2))
            let chain = FallbackChain([slow, Format.openAI.provider(server, model: "backup")], configuration: configuration, clock: clock)
            let task = Task { try await chain.stream("hi").collect() }
            try await server.waitForRequests(1, model: "slow")
            try await clock.waitForSleepers(1)
            #expect(clock.nextDeadline == clock.now.advanced(by: .seconds(2)))
            clock.advance(by: .seconds(2))
            let response = try await task.value
            #expect(response.content == "fast answer")
        }
    }

    @Test func aStallAfterContentEndsWithATypedError() async throws {
        try await withServer { server in
            server.script("stalls", .stallAfter(chunks: 2))
            let clock = ManualClock()
            var configuration = config()
            configuration.streamTimeouts = StreamTimeouts(idle: .seconds(5))
            let chain = FallbackChain([Format.openAI.provider(server, model: "stalls"), Format.openAI.provider(server, model: "backup")], configuration: configuration, clock: clock)
            let received = Recorder<String>()
            let task = Task {
                for try await chunk in chain.stream("hi") where chunk.hasContent { received.append(chunk.content) }
            }
            try await received.wait(for: 2)
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(5))
            await #expect {
                try await task.value
            } throws: { error in
                guard let error = error as? StreamInterrupted else { return false }
                return error.deliveredChunks == 2 && error.underlying.kind == .timeout && error.underlying.message.contains("stalled")
            }
            #expect(server.requests(for: "backup").isEmpty)
            try await server.waitForAbandonedRequests(1)
        }
    }

    @Test(arguments: Format.allCases)
    func aCutAfterContentIsNeverPassedOffAsComplete(_ format: Format) async throws {
        try await withServer { server in
            server.script("cut", .cutStream(afterChunks: 3))
            server.script("backup", .text("backup answer"))
            let chain = FallbackChain([format.provider(server, model: "cut"), format.provider(server, model: "backup")], configuration: config())
            var delivered = ""
            var chunks = 0
            do {
                for try await chunk in chain.stream("hi") where chunk.hasContent {
                    delivered += chunk.content
                    chunks += 1
                }
                // Only acceptable when the cut came before any content reached us (a loaded machine can see the
                // close before the bytes): then the failover is transparent and the answer is the backup's, whole.
                #expect(delivered == "backup answer", "\(format): a cut stream must not end cleanly")
            } catch let error as StreamInterrupted {
                #expect((1...3).contains(error.deliveredChunks))
                #expect(error.deliveredChunks == chunks)
                #expect(error.deliveredCharacters == delivered.count)
                #expect(error.provider == "\(format.rawValue)/cut")
                #expect(error.trace.count == 1)
                #expect(server.requests(for: "backup").isEmpty)
            }
        }
    }

    // The cut tests below allow for a loaded machine: a client may see the close in the same read as the last bytes
    // and drop them (AsyncHTTPClient does), so fewer chunks than were sent may arrive, never more. With none
    // delivered, the failover is simply transparent.

    @Test func restartPolicyTellsTheCallerAndReRuns() async throws {
        try await withServer { server in
            server.script("cut", .cutStream(afterChunks: 2, text: "partial answer that breaks"))
            server.script("backup", .text("complete answer"))
            var configuration = config()
            configuration.midStreamPolicy = .restart
            let chain = FallbackChain([Format.openAI.provider(server, model: "cut"), Format.anthropic.provider(server, model: "backup")], configuration: configuration)
            var chunks: [ChatChunk] = []
            for try await chunk in chain.stream("hi") { chunks.append(chunk) }
            if let restartIndex = chunks.firstIndex(where: { $0.kind == .restart }) {
                let partial = chunks[..<restartIndex].map(\.content).joined()
                #expect(!partial.isEmpty && "partial answer".hasPrefix(partial))
                #expect(chunks[restartIndex...].map(\.content).joined() == "complete answer")
            } else {
                #expect(chunks.map(\.content).joined() == "complete answer")
            }
            let collected = try await chain.stream("again").collect()
            #expect(collected.content == "complete answer")
        }
    }

    @Test func continuePolicyPrefillsWhereSupported() async throws {
        try await withServer { server in
            server.script("cut", .cutStream(afterChunks: 2, text: "Once upon a time"))
            server.script("claude-3-5-sonnet", .text(" a time there was"))
            var configuration = config()
            configuration.midStreamPolicy = .continue
            let chain = FallbackChain([Format.openAI.provider(server, model: "cut"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")], configuration: configuration)
            var chunks: [ChatChunk] = []
            for try await chunk in chain.stream("tell") { chunks.append(chunk) }
            #expect(!chunks.contains { $0.kind == .restart })
            let text = chunks.map(\.content).joined()
            #expect(text.hasSuffix(" a time there was"))
            let delivered = String(text.dropLast(" a time there was".count))
            #expect("Once upon".hasPrefix(delivered))
            let sent = try JSONValue(parsing: try #require(server.requests(for: "claude-3-5-sonnet").first).bodyText)
            let last = sent["messages"]?.arrayValue?.last
            if delivered.isEmpty {
                #expect(last?["role"] == "user")
            } else {
                #expect(last?["role"] == "assistant")
                let prefill = last?["content"]?.stringValue ?? last?["content"]?.arrayValue?.first?["text"]?.stringValue
                #expect(prefill == delivered.trimmingCharacters(in: .whitespaces))
            }
        }
    }

    @Test func aRefusedPrefillNeverHidesTheOriginalFailure() async throws {
        try await withServer { server in
            server.script("cut", .cutStream(afterChunks: 2))
            server.script("claude-3-5-sonnet", .status(400, message: "prefill not allowed"))
            var configuration = config()
            configuration.midStreamPolicy = .continue
            let chain = FallbackChain([Format.openAI.provider(server, model: "cut"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")], configuration: configuration)
            var delivered = 0
            do {
                for try await chunk in chain.stream("hi") where chunk.hasContent { delivered += 1 }
                Issue.record("expected a failure")
            } catch let error as StreamInterrupted {
                #expect(error.underlying.kind == .connection)
                #expect(error.underlying.message.contains("prefill not allowed"))
            } catch let error as ProviderError {
                // Only when the cut came before any content: then there was nothing to continue, and the backup's
                // refusal of the request itself stops the chain as the policy says.
                #expect(delivered == 0)
                #expect(error.kind == .invalidRequest)
            }
        }
    }

    @Test func relayedPingsDoNotResetTheStallTimer() async throws {
        try await withServer { server in
            let start = #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#
            let block = #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            let delta = #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#
            let pings = Array(repeating: "event: ping\ndata: {\"type\":\"ping\"}\n\n", count: 30)
            let parts = ["event: message_start\ndata: \(start)\n\n", "event: content_block_start\ndata: \(block)\n\n", "event: content_block_delta\ndata: \(delta)\n\n"] + pings
            // Pings every 50 ms for 1.5 s, then the body ends without message_stop (a cut, if nothing came first).
            server.script("claude-x", .chunkDelay(.milliseconds(50), .raw(status: 200, headers: ["content-type": "text/event-stream"], parts: parts)))
            let clock = ManualClock()
            var configuration = config()
            configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(60), idle: .seconds(5))
            let chain = FallbackChain([Format.anthropic.provider(server, model: "claude-x")], configuration: configuration, clock: clock)
            // A passthrough request: the provider's events, pings included, are relayed to the caller.
            let body = #"{"model":"claude-x","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let request = try AnthropicMessagesServer.decodeRequest(ByteBuffer(string: body)).request
            var phase = 0
            do {
                for try await chunk in chain.stream(request) {
                    if chunk.hasContent && phase == 0 {
                        phase = 1
                        clock.advance(by: .seconds(3))
                    } else if chunk.isKeepAlive && phase == 1 {
                        // A ping after 3 s of silence in content: were it activity, the stall would move to 8 s.
                        phase = 2
                        clock.advance(by: .seconds(3))
                    }
                }
                Issue.record("expected the stream to stall")
            } catch let error as StreamInterrupted {
                #expect(phase == 2)
                #expect(error.underlying.kind == .timeout, "\(error)")
            }
        }
    }

    @Test func malformedChunkAfterContentIsATypedError() async throws {
        try await withServer { server in
            server.script("m", .malformedChunk(afterChunks: 2))
            do {
                for try await _ in singleChain(Format.openAI.provider(server, model: "m")).stream("hi") {}
                Issue.record("expected a failure")
            } catch let error as StreamInterrupted {
                #expect(error.underlying.kind == .invalidResponse)
            }
            // The process and the server stay healthy: the next stream works.
            server.script("m", .text("fine"))
            let next = try await singleChain(Format.openAI.provider(server, model: "m")).stream("hi").collect()
            #expect(next.content == "fine")
        }
    }

    @Test func breakingOutOfTheLoopCancelsUpstream() async throws {
        try await withServer { server in
            server.script("m", .chunkDelay(.milliseconds(20), .text((1...200).map { "w\($0)" }.joined(separator: " "))))
            let chain = singleChain(Format.openAI.provider(server, model: "m"))
            var seen = 0
            for try await chunk in chain.stream("hi") where chunk.hasContent {
                seen += 1
                if seen == 3 { break }
            }
            try await server.waitForAbandonedRequests(1)
            #expect(chain.healthReport()[0].failures == 0)
        }
    }

    @Test func streamLatencyIsTimeToFirstToken() async throws {
        try await withServer { server in
            server.script("m", .text("a b c"))
            let chain = singleChain(Format.openAI.provider(server, model: "m"))
            _ = try await chain.stream("hi").collect()
            let report = chain.healthReport()[0]
            #expect(report.latency != nil)
            #expect(report.successes == 1)
        }
    }
}
