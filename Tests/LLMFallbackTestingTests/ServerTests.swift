import AsyncHTTPClient
import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Testing

/// Routing, recording, connections and waiting.
@Suite(.timeLimit(.minutes(1)))
struct ServerTests {
    @Test func baseURLs() async throws {
        try await withMockLLMServer { server in
            #expect(server.port > 0)
            #expect(server.baseURL == "http://127.0.0.1:\(server.port)")
            #expect(server.openAIBaseURL == "http://127.0.0.1:\(server.port)/v1")
        }
    }

    @Test(arguments: [
        (Endpoint.openAI, false), (.openAI, true), (.azure, true), (.anthropic, false), (.gemini, false),
        (.gemini, true),
    ])
    func recordsModelFormatAndStream(endpoint: Endpoint, stream: Bool) async throws {
        try await withServer { server, client in
            let url = endpoint.url(on: server, model: "model-1", stream: stream)
            let body = endpoint.body(model: "model-1", stream: stream)
            let response = try await client.post(url, json: body, headers: [("Authorization", "Bearer sk-test")])
            #expect(response.status == 200)
            let request = try #require(server.requests.first)
            #expect(request.method == "POST")
            #expect(request.model == "model-1")
            #expect(request.format == endpoint.format)
            #expect(request.isStream == stream)
            #expect(request.bodyText == body)
            #expect(request.body == Array(body.utf8))
            #expect(request.header("authorization") == "Bearer sk-test")
            #expect(request.header("CONTENT-TYPE") == "application/json")
            #expect(request.header("x-missing") == nil)
            switch endpoint {
            case .openAI:
                #expect(request.path == "/v1/chat/completions")
            case .azure:
                #expect(request.path == "/openai/deployments/model-1/chat/completions")
                #expect(request.query == ["api-version": "2024-10-21"])
            case .anthropic:
                #expect(request.path == "/v1/messages")
            case .gemini:
                #expect(
                    request.path == "/v1beta/models/model-1:" + (stream ? "streamGenerateContent" : "generateContent")
                )
            }
            #expect(server.requests(for: "model-1").count == 1)
            #expect(server.requests(for: "other").isEmpty)
        }
    }

    @Test func unknownRoutesAre404WithAnOpenAIError() async throws {
        try await withServer { server, client in
            let post = try await client.post(server.baseURL + "/v1/completions", json: #"{"model":"gpt-4o"}"#)
            #expect(post.status == 404)
            let error = try post.json().object("error")
            #expect(error?["type"] as? String == "invalid_request_error")
            #expect((error?["message"] as? String)?.contains("/v1/completions") == true)
            #expect(error?["param"] is NSNull)

            let get = try await client.execute(
                HTTPClientRequest(url: server.openAIBaseURL + "/chat/completions"),
                timeout: .seconds(30)
            )
            #expect(get.status == .notFound)

            #expect(server.requests.map(\.format) == [.unknown, .unknown])
            #expect(server.requests.map(\.method) == ["POST", "GET"])
        }
    }

    @Test func keepAliveReusesOneConnection() async throws {
        try await withServer { server, client in
            for model in ["a", "b", "c"] {
                _ = try await client.send(.openAI, to: server, model: model, stream: model == "b")
            }
            #expect(server.connectionsAccepted == 1)
            #expect(Set(server.requests.map(\.connection)).count == 1)
        }
    }

    @Test func connectionCloseOpensANewConnection() async throws {
        try await withServer { server, client in
            let url = server.openAIBaseURL + "/chat/completions"
            let first = try await client.post(url, json: #"{"model":"a"}"#, headers: [("connection", "close")])
            #expect(first.headers.first(name: "connection") == "close")
            _ = try await client.post(url, json: #"{"model":"b"}"#)
            #expect(server.connectionsAccepted == 2)
            #expect(Set(server.requests.map(\.connection)).count == 2)
        }
    }

    @Test func concurrentRequestsOpenSeveralConnections() async throws {
        try await withServer { server, client in
            server.script("slow", .hang)
            let hanging = Task { try await client.send(.openAI, to: server, model: "slow") }
            try await server.waitForRequests(1, model: "slow")
            _ = try await client.send(.openAI, to: server, model: "fast")
            #expect(server.connectionsAccepted == 2)
            hanging.cancel()
            try await server.waitForAbandonedRequests(1)
        }
    }

    @Test func waitForRequestsCountsPerModel() async throws {
        try await withServer { server, client in
            server.script("a", .hang)
            server.script("b", .hang)
            let requests = Task {
                try await withThrowingTaskGroup { group in
                    for model in ["a", "b", "b"] {
                        group.addTask { _ = try await client.send(.openAI, to: server, model: model) }
                    }
                    try await group.waitForAll()
                }
            }
            try await server.waitForRequests(2, model: "b")
            #expect(server.requests(for: "b").count == 2)
            try await server.waitForRequests(3)
            #expect(server.requests(for: "a").count == 1)
            // Already satisfied: returns at once.
            try await server.waitForRequests(1, model: "a")
            requests.cancel()
            try await server.waitForAbandonedRequests(3)
        }
    }

    @Test func waitingEndsWhenTheTaskIsCancelled() async throws {
        try await withMockLLMServer { server in
            let waiter = Task { try await server.waitForRequests(10) }
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            let abandonedWaiter = Task { try await server.waitForAbandonedRequests(10) }
            abandonedWaiter.cancel()
            await #expect(throws: CancellationError.self) { try await abandonedWaiter.value }
            #expect(server.requests.isEmpty)
        }
    }

    @Test func waitingEndsWhenTheServerShutsDown() async throws {
        let server = try await MockLLMServer.start()
        let waiting = Task { try await server.waitForRequests(1) }
        try await server.shutdown()
        await #expect(throws: MockLLMServer.WaitTimeout.self) { try await waiting.value }
        // Waiting after shutdown ends at once, and shutting down twice does nothing.
        await #expect(throws: MockLLMServer.WaitTimeout.self) { try await server.waitForAbandonedRequests(1) }
        try await server.shutdown()
    }

    @Test func aWaitForRequestsThatNeverComeEndsAtItsTimeout() async throws {
        try await withMockLLMServer { server in
            let error = await #expect(throws: MockLLMServer.WaitTimeout.self) {
                try await server.waitForRequests(1, model: "never", timeout: .milliseconds(50))
            }
            #expect(error?.description == #"waited 0.05 seconds for 1 requests for "never", but 0 arrived"#)
            await #expect(throws: MockLLMServer.WaitTimeout.self) {
                try await server.waitForAbandonedRequests(1, timeout: .milliseconds(50))
            }
        }
    }

    @Test func shutdownClosesOpenConnectionsWithoutCountingThemAbandoned() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let server = try await MockLLMServer.start()
        server.script("gpt-4o", .hang)
        let request = Task { try await client.send(.openAI, to: server, model: "gpt-4o") }
        try await server.waitForRequests(1)
        try await server.shutdown()
        await #expect(throws: (any Error).self) { try await request.value }
        #expect(server.abandonedRequests == 0)
        try await client.shutdown()
    }

    @Test func resetClearsScriptsRecordsAndCounters() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .status(500))
            let before = try await client.send(.openAI, to: server, model: "gpt-4o")
            #expect(before.status == 500)
            #expect(server.requests.count == 1)
            server.reset()
            #expect(server.requests.isEmpty)
            #expect(server.connectionsAccepted == 0)
            let after = try await client.send(.openAI, to: server, model: "gpt-4o")
            #expect(after.status == 200)
            #expect(server.requests.count == 1)
        }
    }

    @Test func emptyScriptRestoresTheDefault() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .status(500))
            server.script("gpt-4o", [])
            let response = try await client.send(.openAI, to: server, model: "gpt-4o")
            #expect(response.status == 200)
        }
    }
}
