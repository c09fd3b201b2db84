import AsyncHTTPClient
import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Testing

/// Error statuses and misbehaving connections.
@Suite(.timeLimit(.minutes(1)))
struct FaultTests {
    @Test(arguments: Endpoint.allCases)
    func statusSendsTheFormatsErrorBodyAndHeaders(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("m1", .status(429, headers: ["retry-after": "2", "retry-after-ms": "1500"]))
            let response = try await client.send(endpoint, to: server, model: "m1", stream: true)
            #expect(response.status == 429)
            #expect(response.headers.first(name: "retry-after") == "2")
            #expect(response.headers.first(name: "retry-after-ms") == "1500")
            #expect(response.headers.first(name: "content-type") == "application/json")
            let body = try response.json()
            switch endpoint {
            case .openAI, .azure:
                let error = try #require(body.object("error"))
                #expect(error["message"] is String)
                #expect(error["type"] as? String == "requests")
                #expect(error["param"] is NSNull)
                #expect(error["code"] as? String == "rate_limit_exceeded")
            case .anthropic:
                #expect(body["type"] as? String == "error")
                #expect(body.object("error")?["type"] as? String == "rate_limit_error")
                #expect(body.object("error")?["message"] is String)
            case .gemini:
                #expect(body.object("error")?["code"] as? Int == 429)
                #expect(body.object("error")?["status"] as? String == "RESOURCE_EXHAUSTED")
                #expect(body.object("error")?["message"] is String)
            }
        }
    }

    @Test(arguments: [
        (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
        (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
        (529, "overloaded_error"),
    ])
    func anthropicErrorTypeFollowsTheStatus(status: Int, type: String) async throws {
        try await withServer { server, client in
            server.script("claude", .status(status))
            let response = try await client.send(.anthropic, to: server, model: "claude")
            #expect(response.status == status)
            #expect(try response.json().object("error")?["type"] as? String == type)
        }
    }

    @Test(arguments: [
        (400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"),
    ])
    func geminiErrorStatusFollowsTheStatus(status: Int, name: String) async throws {
        try await withServer { server, client in
            server.script("gemini", .status(status))
            let response = try await client.send(.gemini, to: server, model: "gemini")
            #expect(response.status == status)
            #expect(try response.json().object("error")?["status"] as? String == name)
        }
    }

    @Test func statusFieldsCanBeOverridden() async throws {
        try await withServer { server, client in
            server.script(
                "gpt-4o",
                .status(
                    400,
                    message: "This model's maximum context length is 8192 tokens.",
                    type: "invalid_request_error",
                    code: "context_length_exceeded"
                )
            )
            let error = try await client.send(.openAI, to: server, model: "gpt-4o").json().object("error")
            #expect(error?["message"] as? String == "This model's maximum context length is 8192 tokens.")
            #expect(error?["type"] as? String == "invalid_request_error")
            #expect(error?["code"] as? String == "context_length_exceeded")
        }
    }

    @Test func rawSendsExactlyWhatItIsGiven() async throws {
        try await withServer { server, client in
            server.script(
                "gpt-4o",
                .raw(status: 502, headers: ["content-type": "text/html"], body: "<h1>Bad Gateway</h1>")
            )
            let response = try await client.send(.openAI, to: server, model: "gpt-4o")
            #expect(response.status == 502)
            #expect(response.headers.first(name: "content-type") == "text/html")
            #expect(response.headers.first(name: "content-length") == "20")
            #expect(response.text == "<h1>Bad Gateway</h1>")
        }
    }

    @Test func scriptsAreQueuedAndTheLastRepeats() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", [.status(503), .status(429), .text("finally")])
            var statuses: [Int] = []
            for _ in 0..<5 {
                statuses.append(try await client.send(.openAI, to: server, model: "gpt-4o").status)
            }
            #expect(statuses == [503, 429, 200, 200, 200])
            #expect(server.requests(for: "gpt-4o").count == 5)
            // Other models keep the default answer.
            let other = try await client.send(.openAI, to: server, model: "gpt-4o-mini").json()
            #expect(Endpoint.openAI.answerText(other) == "Hello from gpt-4o-mini")
        }
    }

    @Test func delayedWaitsBeforeAnswering() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .delayed(.milliseconds(150), .text("late")))
            let clock = ContinuousClock()
            let start = clock.now
            let body = try await client.send(.openAI, to: server, model: "gpt-4o").json()
            #expect(clock.now - start >= .milliseconds(150))
            #expect(Endpoint.openAI.answerText(body) == "late")
        }
    }

    @Test(arguments: Endpoint.allCases)
    func cutStreamFailsTheClient(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("m1", .cutStream(afterChunks: 2, text: "one two three four"))
            let response = try await client.execute(
                .post(
                    endpoint.url(on: server, model: "m1", stream: true),
                    json: endpoint.body(model: "m1", stream: true)
                ),
                timeout: .seconds(30)
            )
            #expect(response.status == .ok)
            var received = ""
            await #expect(throws: (any Error).self) {
                for try await buffer in response.body {
                    received += String(buffer: buffer)
                }
            }
            let events = parseSSE(received)
            // Two chunks were sent before the cut; a client that sees the close in the same read as the last bytes
            // (AsyncHTTPClient drops them) gets fewer on a loaded machine, never more, and never a terminator.
            let text = try endpoint.streamedText(events)
            #expect("one two".hasPrefix(text))
            #expect(!endpoint.isTerminated(events))
            #expect(server.abandonedRequests == 0)
        }
    }

    @Test func cutStreamTruncatesANonStreamedBody() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .cutStream(afterChunks: 1))
            await #expect(throws: (any Error).self) {
                _ = try await client.send(.openAI, to: server, model: "gpt-4o")
            }
        }
    }

    @Test(arguments: Endpoint.allCases)
    func missingTerminatorEndsCleanlyWithoutIt(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("m1", .missingTerminator(text: "one two three"))
            let response = try await client.send(endpoint, to: server, model: "m1", stream: true)
            #expect(response.status == 200)
            #expect(try endpoint.streamedText(response.events) == "one two three")
            #expect(!endpoint.isTerminated(response.events))
        }
    }

    @Test(arguments: Endpoint.allCases)
    func malformedChunkIsFollowedByTheRestOfTheStream(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("m1", .malformedChunk(afterChunks: 1, text: "one two three"))
            let events = try await client.send(endpoint, to: server, model: "m1", stream: true).events
            let malformedIndex = events.firstIndex { $0.data == "{not json" }
            let malformed = try #require(malformedIndex)
            #expect(try endpoint.streamedText(Array(events[..<malformed])).hasSuffix("one"))
            #expect(try endpoint.streamedText(events) == "one two three")
            #expect(endpoint.isTerminated(events))
        }
    }

    @Test(arguments: Endpoint.allCases)
    func streamErrorSendsAnInStreamError(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("m1", .streamError(afterChunks: 2, text: "one two three"))
            let response = try await client.send(endpoint, to: server, model: "m1", stream: true)
            #expect(response.status == 200)
            let events = response.events
            #expect(try endpoint.streamedText(events) == "one two")
            let error = try #require(events.last)
            switch endpoint {
            case .openAI, .azure:
                #expect(try error.json().object("error")?["type"] as? String == "server_error")
            case .anthropic:
                #expect(error.name == "error")
                #expect(try error.json()["type"] as? String == "error")
                #expect(try error.json().object("error")?["type"] as? String == "overloaded_error")
                #expect(try error.json().object("error")?["message"] as? String == "Overloaded")
            case .gemini:
                #expect(try error.json().object("error")?["code"] as? Int == 503)
                #expect(try error.json().object("error")?["status"] as? String == "UNAVAILABLE")
            }
        }
    }

    @Test func streamErrorWithoutStreamIsAnErrorStatus() async throws {
        try await withServer { server, client in
            server.script("claude", .streamError(afterChunks: 1, status: 529))
            let response = try await client.send(.anthropic, to: server, model: "claude")
            #expect(response.status == 529)
            #expect(try response.json().object("error")?["type"] as? String == "overloaded_error")
        }
    }

    @Test func hangThenTimeoutCountsAnAbandonedRequest() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .hang)
            // Open the connection first, so that the request reaches the server well before its deadline.
            _ = try await client.send(.openAI, to: server, model: "warm-up")
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                _ = try await client.execute(
                    .post(server.openAIBaseURL + "/chat/completions", json: #"{"model":"gpt-4o"}"#),
                    // Long enough for the request to arrive on a loaded machine, where the server's count is checked.
                    timeout: .seconds(3)
                )
            }
            #expect(server.requests(for: "gpt-4o").count == 1)
            try await server.waitForAbandonedRequests(1)
            #expect(server.abandonedRequests == 1)
        }
    }

    @Test func hangThenCancellationCountsAnAbandonedRequest() async throws {
        try await withServer { server, client in
            server.script("claude", .hang)
            let request = Task {
                try await client.send(.anthropic, to: server, model: "claude", stream: true)
            }
            try await server.waitForRequests(1, model: "claude")
            request.cancel()
            await #expect(throws: (any Error).self) { try await request.value }
            try await server.waitForAbandonedRequests(1)
            #expect(server.abandonedRequests == 1)
        }
    }

    @Test func stallAfterThenCancellationCountsAnAbandonedRequest() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .stallAfter(chunks: 2, text: "one two three"))
            let (progress, progressContinuation) = AsyncStream.makeStream(of: String.self)
            let reader = Task {
                // However the read ends, the wait below ends with it (a failed request must not hang the test).
                defer { progressContinuation.finish() }
                let response = try await client.execute(
                    .post(server.openAIBaseURL + "/chat/completions", json: #"{"model":"gpt-4o","stream":true}"#),
                    timeout: .seconds(30)
                )
                var received = ""
                for try await buffer in response.body {
                    received += String(buffer: buffer)
                    progressContinuation.yield(received)
                }
            }
            // Wait until both chunks have arrived; the stream then stalls.
            var received = ""
            for await progressSoFar in progress where parseSSE(progressSoFar).count == 2 {
                received = progressSoFar
                break
            }
            let streamed = try Endpoint.openAI.streamedText(parseSSE(received))
            #expect(streamed == "one two")
            #expect(server.abandonedRequests == 0)
            reader.cancel()
            await #expect(throws: (any Error).self) { try await reader.value }
            try await server.waitForAbandonedRequests(1)
            #expect(server.abandonedRequests == 1)
        }
    }

    @Test func resetFailsTheClient() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .reset)
            await #expect(throws: (any Error).self) {
                _ = try await client.send(.openAI, to: server, model: "gpt-4o")
            }
            #expect(server.requests.count == 1)
            #expect(server.abandonedRequests == 0)
        }
    }
}
