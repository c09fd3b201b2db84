import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@Suite("Streaming through the gateway")
struct StreamingTests {
    @Test("a stream is chat.completion.chunk events: role first, the text, a finish reason, then [DONE]")
    func stream() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .text("one two three"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "content-type") == "text/event-stream")
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "primary")
            #expect(answer.headers.first(name: "x-llm-fallback-model") == "model-primary")
            #expect(answer.headers.first(name: "x-llm-fallback-attempts") == "1")
            #expect(answer.events.last == "[DONE]")
            #expect(answer.streamedText == "one two three")
            let chunks = answer.chunks
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
            #expect(chunks.allSatisfy { $0["model"] as? String == "model-primary" })
            let firstDelta = (chunks.first?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
            #expect(firstDelta?["role"] as? String == "assistant")
            let finishes = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
            #expect(finishes == ["stop"])
            #expect(!chunks.contains { $0["usage"] != nil }, "no usage chunk unless asked for")
        }
    }

    @Test("include_usage adds a usage chunk with empty choices before [DONE]")
    func includeUsage() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .text("one two", usage: (prompt: 9, completion: 2)))
            let answer = try await gateway.chat("default", stream: true, includeUsage: true)
            let events = answer.events
            #expect(events.last == "[DONE]")
            let usageChunk = try #require(answer.chunks.last)
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(usageChunk["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 9)
            #expect(usage["completion_tokens"] as? Int == 2)
            #expect(usage["total_tokens"] as? Int == 11)
        }
    }

    @Test("a streamed tool call arrives as tool_call deltas with index, id, type and function")
    func toolCallDeltas() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .toolCall(name: "get_weather", arguments: #"{"city":"Paris","unit":"celsius"}"#, id: "call_7"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.events.last == "[DONE]")
            let deltas = answer.chunks.compactMap { chunk -> [[String: Any]]? in
                ((chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["tool_calls"] as? [[String: Any]]
            }.flatMap { $0 }
            #expect(deltas.count > 1)
            #expect(deltas.allSatisfy { $0["index"] as? Int == 0 })
            #expect(deltas.first?["id"] as? String == "call_7")
            #expect(deltas.first?["type"] as? String == "function")
            #expect((deltas.first?["function"] as? [String: Any])?["name"] as? String == "get_weather")
            let arguments = deltas.compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined()
            #expect(arguments == #"{"city":"Paris","unit":"celsius"}"#)
            let finishes = answer.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
            #expect(finishes == ["tool_calls"])
        }
    }

    @Test("a failover before the first token is invisible: the stream comes from the backup, headers say so")
    func failoverBeforeFirstToken() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(503))
            server.script("model-backup", .text("from the backup"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "backup")
            #expect(answer.headers.first(name: "x-llm-fallback-model") == "model-backup")
            #expect(answer.headers.first(name: "x-llm-fallback-attempts") == "2")
            #expect(answer.streamedText == "from the backup")
            #expect(answer.chunks.allSatisfy { $0["model"] as? String == "model-backup" })
            #expect(answer.events.last == "[DONE]")
        }
    }

    @Test("a stream that fails before its first chunk gets an honest status, not a 200")
    func failureBeforeFirstChunk() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(500))
            server.script("model-backup", .status(502))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 502)
            #expect(answer.errorCode == "all_providers_failed")
        }
    }

    @Test("an error after the stream started is a final error event, never [DONE]")
    func errorAfterStart() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .cutStream(afterChunks: 2, text: "one two three four"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            let events = answer.events
            #expect(!events.contains("[DONE]"))
            #expect(answer.streamedText == "one two")
            let last = try #require(answer.chunks.last)
            let error = try #require(last["error"] as? [String: Any])
            #expect((error["message"] as? String)?.isEmpty == false)
            #expect(error["type"] as? String != nil)
            #expect(!(error["message"] as? String ?? "").contains(secretKey))
        }
    }

    @Test("a restart chunk (restart mid-stream policy) ends the stream with an error event")
    func restartEndsWithError() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0, midStreamPolicy: .restart)] }) { server, gateway in
            server.script("model-primary", .cutStream(afterChunks: 1, text: "one two three"))
            let answer = try await gateway.chat("default", stream: true)
            #expect(!answer.events.contains("[DONE]"))
            let error = try #require(answer.chunks.last?["error"] as? [String: Any])
            #expect(error["code"] as? String == "stream_restarted")
        }
    }

    @Test("a client that disconnects mid-stream cancels the upstream request")
    func disconnectCancelsUpstream() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            // Ten seconds of stream: long enough that a loaded machine cannot finish it before the client leaves.
            let words = ["one"] + (2...100).map { "w\($0)" }
            server.script("model-primary", .chunkDelay(.milliseconds(100), .text(words.joined(separator: " "))))
            let (firstEvent, gotFirst) = AsyncStream<String>.makeStream()
            let reader = Task {
                var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: chatBody("default", stream: true)))
                let response = try await gateway.client.execute(request, timeout: .seconds(30))
                var events = EventReader(response)
                // The role chunk comes first (as OpenAI sends it), then the provider's first text.
                while let event = try await events.next() {
                    if event.contains("one") {
                        gotFirst.yield(event)
                        break
                    }
                }
                gotFirst.finish()
                // Keep reading until cancelled.
                while try await events.next() != nil {}
            }
            var firstEvents = firstEvent.makeAsyncIterator()
            let first = await firstEvents.next()
            #expect(first?.contains("one") == true)
            reader.cancel()
            _ = await reader.result
            try await within(.seconds(10), "the upstream request to be abandoned") {
                try await server.waitForAbandonedRequests(1)
            }
            #expect(server.abandonedRequests == 1)
        }
    }

    @Test("a client that disconnects while the upstream is silent cancels it too (non-streamed)")
    func disconnectWhileWaiting() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .hang)
            let request = Task {
                var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: chatBody("default")))
                _ = try await gateway.client.execute(request, timeout: .seconds(30))
            }
            try await server.waitForRequests(1, model: "model-primary")
            request.cancel()
            _ = await request.result
            try await within(.seconds(10), "the upstream request to be abandoned") {
                try await server.waitForAbandonedRequests(1)
            }
            #expect(server.abandonedRequests == 1)
            #expect(server.requests(for: "model-backup").isEmpty, "a client that left must not cause a failover")
        }
    }

    @Test("graceful shutdown lets a stream in flight finish with [DONE]")
    func gracefulShutdownFinishesStream() async throws {
        try await withMockLLMServer { server in
            server.script("model-primary", .chunkDelay(.milliseconds(60), .text("a b c d e f g h")))
            let chain = mockChain(on: server)
            try await withGateway(chains: ["default": chain]) { gateway in
                var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: chatBody("default", stream: true)))
                let response = try await gateway.client.execute(request, timeout: .seconds(30))
                var reader = EventReader(response)
                var events: [String] = []
                if let first = try await reader.next() { events.append(first) }
                await gateway.group.triggerGracefulShutdown()
                while let event = try await reader.next() { events.append(event) }
                #expect(events.last == "[DONE]")
                let text = events.compactMap { event -> String? in
                    guard let object = try? JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any] else { return nil }
                    return ((object["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
                }.joined()
                #expect(text == "a b c d e f g h")
                #expect(server.abandonedRequests == 0)
            }
        }
    }

    @Test("a stream still open when the grace period ends is cut with no [DONE], and its upstream request cancelled")
    func gracePeriodEnds() async throws {
        try await withMockLLMServer { server in
            server.script("model-primary", .chunkDelay(.milliseconds(100), .text(Array(repeating: "word", count: 100).joined(separator: " "))))
            var configuration = GatewayConfiguration()
            configuration.shutdownGracePeriod = .milliseconds(300)
            try await withGateway(configuration: configuration, chains: ["default": mockChain(on: server)]) { gateway in
                var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: chatBody("default", stream: true)))
                let response = try await gateway.client.execute(request, timeout: .seconds(30))
                var reader = EventReader(response)
                var events: [String] = []
                if let first = try await reader.next() { events.append(first) }
                await gateway.group.triggerGracefulShutdown()
                do {
                    while let event = try await reader.next() { events.append(event) }
                } catch {
                    // The connection may end without the chunked terminator: also not a clean end.
                }
                #expect(!events.contains("[DONE]"))
                #expect(events.count < 100)
                try await within(.seconds(10), "the upstream request to be abandoned") {
                    try await server.waitForAbandonedRequests(1)
                }
            }
        }
    }
}
