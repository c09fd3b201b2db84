import AsyncHTTPClient
import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Testing

/// Streamed answers: several events of the format's shape, ending with its terminator.
@Suite(.timeLimit(.minutes(1)))
struct StreamingTests {
    @Test func openAIStreamShape() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .text("one two"))
            let events = try await client.send(.openAI, to: server, model: "gpt-4o", stream: true).events
            #expect(events.map(\.data).last == "[DONE]")
            let chunks = try events.dropLast().map { try $0.json() }
            #expect(chunks.count == 3)
            for chunk in chunks {
                #expect(chunk["object"] as? String == "chat.completion.chunk")
                #expect(chunk["model"] as? String == "gpt-4o")
                #expect(chunk["id"] as? String == chunks[0]["id"] as? String)
            }
            let first = try #require(chunks[0].array("choices")?.first)
            #expect(first.object("delta")?["role"] as? String == "assistant")
            #expect(first.object("delta")?["content"] as? String == "one")
            #expect(first["finish_reason"] is NSNull)
            #expect(chunks[1].array("choices")?.first?.object("delta")?["content"] as? String == " two")
            let last = try #require(chunks[2].array("choices")?.first)
            #expect(last.object("delta")?.isEmpty == true)
            #expect(last["finish_reason"] as? String == "stop")
            #expect(chunks[2]["usage"] == nil)
        }
    }

    @Test(arguments: [Endpoint.openAI, .azure])
    func includeUsageAddsAUsageChunk(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .text("one two three", usage: (prompt: 5, completion: 3)))
            let events = try await client.send(endpoint, to: server, model: "gpt-4o", stream: true, includeUsage: true)
                .events
            #expect(events.last?.data == "[DONE]")
            let usageChunk = try #require(events.dropLast().last).json()
            #expect(usageChunk.array("choices")?.isEmpty == true)
            #expect(usageChunk.object("usage")?["prompt_tokens"] as? Int == 5)
            #expect(usageChunk.object("usage")?["completion_tokens"] as? Int == 3)
            #expect(usageChunk.object("usage")?["total_tokens"] as? Int == 8)
        }
    }

    @Test func anthropicStreamEventOrder() async throws {
        try await withServer { server, client in
            server.script("claude", .text("one two"))
            let events = try await client.send(.anthropic, to: server, model: "claude", stream: true).events
            #expect(
                events.map(\.name) == [
                    "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                    "content_block_stop", "message_delta", "message_stop",
                ]
            )
            for event in events {
                #expect(try event.json()["type"] as? String == event.name)
            }
            let start = try events[0].json().object("message")
            #expect(start?["model"] as? String == "claude")
            #expect(start?["content"] as? [Any] != nil)
            #expect(start?.object("usage")?["input_tokens"] as? Int == 10)
            #expect(try events[1].json().object("content_block")?["type"] as? String == "text")
            #expect(try events[3].json().object("delta")?["type"] as? String == "text_delta")
            let messageDelta = try events[6].json()
            #expect(messageDelta.object("delta")?["stop_reason"] as? String == "end_turn")
            #expect(messageDelta.object("usage")?["output_tokens"] as? Int == 2)
        }
    }

    @Test func geminiStreamUsesCRLFAndFinishesOnTheLastChunk() async throws {
        try await withServer { server, client in
            server.script("gemini-2.0-flash", .text("one two three"))
            let response = try await client.send(.gemini, to: server, model: "gemini-2.0-flash", stream: true)
            #expect(response.text.hasSuffix("}\r\n\r\n"))
            #expect(!response.text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
            let chunks = try response.events.map { try $0.json() }
            #expect(chunks.count == 3)
            for chunk in chunks.dropLast() {
                #expect(chunk.array("candidates")?.first?["finishReason"] == nil)
                #expect(chunk["usageMetadata"] == nil)
                #expect(chunk["modelVersion"] as? String == "gemini-2.0-flash")
            }
            #expect(chunks.last?.array("candidates")?.first?["finishReason"] as? String == "STOP")
            #expect(chunks.last?.object("usageMetadata")?["candidatesTokenCount"] as? Int == 3)
            let request = try #require(server.requests.first)
            #expect(request.isStream)
            #expect(request.query["alt"] == "sse")
        }
    }

    @Test func openAIToolCallStreamsArgumentFragments() async throws {
        try await withServer { server, client in
            let arguments = #"{"city":"Paris","unit":"celsius"}"#
            server.script("gpt-4o", .toolCall(name: "get_weather", arguments: arguments))
            let events = try await client.send(.openAI, to: server, model: "gpt-4o", stream: true).events
            #expect(events.last?.data == "[DONE]")
            let deltas = try events.dropLast().compactMap { try $0.json().array("choices")?.first?.object("delta") }
            let header = try #require(deltas.first?.array("tool_calls")?.first)
            #expect(header["index"] as? Int == 0)
            #expect(header["id"] as? String == "call_1")
            #expect(header["type"] as? String == "function")
            #expect(header.object("function")?["name"] as? String == "get_weather")
            #expect(header.object("function")?["arguments"] as? String == "")
            let fragments = deltas.dropFirst().compactMap {
                $0.array("tool_calls")?.first?.object("function")?["arguments"] as? String
            }
            #expect(fragments.count > 1)
            #expect(fragments.joined() == arguments)
            let finish = try events.dropLast().last?.json().array("choices")?.first?["finish_reason"]
            #expect(finish as? String == "tool_calls")
        }
    }

    @Test func anthropicToolUseStreamsPartialJSON() async throws {
        try await withServer { server, client in
            let arguments = #"{"city":"Paris","unit":"celsius"}"#
            server.script("claude", .toolCall(name: "get_weather", arguments: arguments, id: "toolu_01"))
            let events = try await client.send(.anthropic, to: server, model: "claude", stream: true).events
            let blockStart = events.first { $0.name == "content_block_start" }
            let block = try #require(blockStart).json().object("content_block")
            #expect(block?["type"] as? String == "tool_use")
            #expect(block?["id"] as? String == "toolu_01")
            #expect(block?["name"] as? String == "get_weather")
            #expect(block?.object("input")?.isEmpty == true)
            let deltas = try events.filter { $0.name == "content_block_delta" }.compactMap {
                try $0.json().object("delta")
            }
            let types = deltas.map { $0["type"] as? String }
            #expect(types == Array(repeating: "input_json_delta", count: deltas.count))
            let fragments = deltas.compactMap { $0["partial_json"] as? String }
            #expect(fragments.count > 1)
            #expect(fragments.joined() == arguments)
            let messageDelta = try events.first { $0.name == "message_delta" }?.json()
            #expect(messageDelta?.object("delta")?["stop_reason"] as? String == "tool_use")
        }
    }

    @Test func geminiFunctionCallStreamsInOneChunk() async throws {
        try await withServer { server, client in
            server.script("gemini", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let chunks = try await client.send(.gemini, to: server, model: "gemini", stream: true).events.map {
                try $0.json()
            }
            #expect(chunks.count == 1)
            let candidate = try #require(chunks.first?.array("candidates")?.first)
            let call = candidate.object("content")?.array("parts")?.first?.object("functionCall")
            #expect(call?["name"] as? String == "get_weather")
            #expect(call?.object("args")?["city"] as? String == "Paris")
            #expect(candidate["finishReason"] as? String == "STOP")
        }
    }

    @Test func chunksSplitsTheTextEvenly() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .text("abcdefg", chunks: 3))
            let events = try await client.send(.openAI, to: server, model: "gpt-4o", stream: true).events
            let pieces = try events.dropLast(2).map {
                try $0.json().array("choices")?.first?.object("delta")?["content"] as? String
            }
            #expect(pieces == ["abc", "de", "fg"])
        }
    }

    @Test func chunkDelayPacesTheEvents() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .chunkDelay(.milliseconds(20), .text("one two three")))
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await client.send(.openAI, to: server, model: "gpt-4o", stream: true)
            // 3 content chunks, the finish chunk and [DONE]: 4 gaps of 20 ms.
            #expect(clock.now - start >= .milliseconds(80))
            #expect(response.parts.count >= 3)
            #expect(response.events.count == 5)
        }
    }
}

/// The streams a ThreadSanitizer run (5-15 times slower) was seen to take past their real-time bounds: the
/// 20,000-chunk stream past the one-minute limit, the first streams past the client's deadline and connect
/// timeout while it ran. Their bounds are multiplied by `TestTimeScale.factor` (1 unless the run sets
/// `LLM_FALLBACK_TEST_TIME_SCALE`), their checks are those of `StreamingTests`.
@Suite(.timeLimit(.minutes(TestTimeScale.factor)))
struct StreamingTestsWithScaledBounds {
    @Test(arguments: Endpoint.allCases)
    func streamEndsWithTerminator(endpoint: Endpoint) async throws {
        try await withServer(clientConfiguration: TestTimeScale.clientConfiguration) { server, client in
            server.script("m1", .text("The quick brown fox"))
            let response = try await client.send(
                endpoint, to: server, model: "m1", stream: true, timeout: TestTimeScale.scaled(.seconds(30))
            )
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            #expect(response.headers.first(name: "transfer-encoding") == "chunked")
            let events = response.events
            #expect(events.count >= 4)
            #expect(try endpoint.streamedText(events) == "The quick brown fox")
            #expect(endpoint.isTerminated(events))
            #expect(server.requests.first?.isStream == true)
        }
    }

    /// A write that completes at once used to call the next step from inside the previous one: a scripted
    /// stream of many thousands of chunks overflowed the event loop's stack and killed the test process.
    @Test func aStreamOfTwentyThousandChunksDoesNotRecurse() async throws {
        try await withServer { server, client in
            let words = (1...20_000).map { "w\($0)" }.joined(separator: " ")
            server.script("m1", .text(words))
            let response = try await client.send(.openAI, to: server, model: "m1", stream: true)
            #expect(response.status == 200)
            #expect(response.events.last?.data == "[DONE]")
            #expect(try Endpoint.openAI.streamedText(response.events) == words)
        }
    }
}
