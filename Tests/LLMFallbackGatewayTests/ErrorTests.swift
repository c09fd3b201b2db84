import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@Suite("Errors in OpenAI's format, with honest statuses")
struct ErrorTests {
    @Test("malformed JSON is a 400 that says so")
    func malformedJSON() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"default","messages":[{"role":"#)
            #expect(answer.status == 400)
            #expect(answer.error["type"] as? String == "invalid_request_error")
            #expect(answer.errorCode == "invalid_json")
            #expect(answer.errorMessage.contains("not valid JSON"))
            #expect(answer.error.keys.sorted() == ["code", "message", "param", "type"])
            #expect(server.requests.isEmpty)
        }
    }

    @Test("a missing field is a 400 naming it")
    func missingMessages() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"default"}"#)
            #expect(answer.status == 400)
            #expect(answer.errorMessage.contains("'messages'"))
            #expect(answer.error["param"] as? String == "messages")

            let badType = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"default","messages":[{"role":"user","content":42}]}"#)
            #expect(badType.status == 400)
            #expect(badType.errorMessage.contains("messages[0].content"), "\(badType.errorMessage)")

            let empty = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"default","messages":[]}"#)
            #expect(empty.status == 400)

            let badRole = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"default","messages":[{"role":"robot","content":"x"}]}"#)
            #expect(badRole.status == 400)
            #expect(badRole.errorMessage.contains("robot"))
        }
    }

    @Test("an unknown chain is a 404 listing the chains")
    func unknownChain() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let answer = try await gateway.chat("gpt-17")
            #expect(answer.status == 404)
            #expect(answer.errorCode == "model_not_found")
            #expect(answer.errorMessage.contains("gpt-17"))
            #expect(answer.errorMessage.contains("'default'"))
        }
    }

    @Test("a provider's refusal of the request is passed through as 400 with its reason")
    func providerClientError() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(400, message: "messages[0].content is too weird", code: "invalid_value"))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 400)
            #expect(answer.error["type"] as? String == "invalid_request_error")
            #expect(answer.errorMessage.contains("messages[0].content is too weird"))
            #expect(server.requests(for: "model-backup").isEmpty, "the chain stops on an invalid request")

            server.script("model-primary", .status(400, message: "This model's maximum context length is 8192 tokens", code: "context_length_exceeded"))
            server.script("model-backup", .status(400, message: "prompt is too long for this one as well", code: "context_length_exceeded"))
            let tooLong = try await gateway.chat("default")
            #expect(tooLong.status == 400)
            #expect(tooLong.errorCode == "context_length_exceeded")
            #expect(tooLong.errorMessage.contains("maximum context length"))
        }
    }

    @Test("all providers failed is a 502 with the attempt trace: providers, classes and statuses")
    func allFailed() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(500, message: "primary exploded"))
            server.script("model-backup", .status(503, message: "backup overloaded"))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 502)
            #expect(answer.errorCode == "all_providers_failed")
            let message = answer.errorMessage
            #expect(message.contains("primary"))
            #expect(message.contains("backup"))
            #expect(!message.contains("primary exploded"), "what an upstream said stays in the log by default")
            #expect(message.contains("server_error (HTTP 500)"))
            #expect(message.contains("attempts:"))
            #expect(message.contains("#1"))
        }
    }

    @Test("every breaker open is a 503 with Retry-After; /health/providers shows the breakers")
    func allCircuitsOpen() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0, failureThreshold: 1)] }) { server, gateway in
            server.script("model-primary", .status(500))
            server.script("model-backup", .status(500))
            let first = try await gateway.chat("default")
            #expect(first.status == 502)

            let health = try await gateway.send(.GET, "/health/providers")
            #expect(health.status == 200)
            let chain = try #require((health.json["chains"] as? [String: Any])?["default"] as? [String: Any])
            #expect(chain["status"] as? String == "down")
            let providers = try #require(chain["providers"] as? [[String: Any]])
            #expect(providers.map { $0["name"] as? String } == ["primary", "backup"])
            #expect(providers.allSatisfy { $0["state"] as? String == "open" })
            #expect(providers.allSatisfy { ($0["reopens_in_ms"] as? Int ?? 0) > 0 })
            #expect(providers.allSatisfy { $0["consecutive_failures"] as? Int == 1 })
            #expect(providers.allSatisfy { ($0["failures_by_class"] as? [String: Int])?["server_error"] == 1 })

            let second = try await gateway.chat("default")
            #expect(second.status == 503, "\(second.body)")
            #expect(second.errorCode == "all_circuits_open")
            let retryAfter = try #require(second.headers.first(name: "retry-after").flatMap { Int($0) })
            #expect(retryAfter > 0 && retryAfter <= 60)
        }
    }

    @Test("a breaker opened by failures shows in /health/providers while the backup answers")
    func breakerVisible() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0, failureThreshold: 1)] }) { server, gateway in
            server.script("model-primary", .status(500))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            let health = try await gateway.send(.GET, "/health/providers")
            #expect(health.json["status"] as? String == "degraded")
            let providers = try #require(((health.json["chains"] as? [String: Any])?["default"] as? [String: Any])?["providers"] as? [[String: Any]])
            #expect(providers[0]["state"] as? String == "open")
            #expect(providers[0]["attempts"] as? Int == 1)
            #expect(providers[1]["state"] as? String == "closed")
            #expect(providers[1]["successes"] as? Int == 1)
            #expect(providers[1]["share"] as? Double == 1)
            #expect(providers[1]["latency_ms"] as? Double != nil)
            #expect(providers[0]["learned_from"] as? String == "local")
            #expect(providers[0]["learned_from_instance"] is NSNull)
        }
    }

    @Test("a breaker learned from another instance through the health store shows as learned_from peer")
    func breakerLearnedFromPeer() async throws {
        let store = PeerStore()
        try await withGateway(chains: { server in
            var configuration = FallbackChain.Configuration()
            configuration.circuitBreaker.recoveryTimeout = .seconds(60)
            configuration.healthStore = store
            return ["default": FallbackChain([mockProvider("primary", model: "model-primary", on: server), mockProvider("backup", model: "model-backup", on: server)], configuration: configuration)]
        }) { server, gateway in
            let subscriber = try #require(store.subscriber)
            let primary = subscriber.providerIdentities[0]
            subscriber.apply(HealthUpdate(provider: primary, openFor: .seconds(30), isClosed: false, retryAfter: nil, origin: "gateway-b"))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            #expect(server.requests(for: "model-primary").isEmpty)
            let health = try await gateway.send(.GET, "/health/providers")
            let providers = try #require(((health.json["chains"] as? [String: Any])?["default"] as? [String: Any])?["providers"] as? [[String: Any]])
            #expect(providers[0]["state"] as? String == "open")
            #expect(providers[0]["learned_from"] as? String == "peer")
            #expect(providers[0]["learned_from_instance"] as? String == "gateway-b")
            #expect(providers[1]["learned_from"] as? String == "local")
            #expect(store.published.isEmpty)  // a peer's news is not published again
        }
    }

    @Test("every provider rate limited is a 429 with Retry-After in whole seconds, rounded up")
    func allRateLimited() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(429, headers: ["retry-after-ms": "1500"]))
            server.script("model-backup", .status(429, headers: ["retry-after": "3"]))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 429)
            #expect(answer.error["type"] as? String == "rate_limit_error")
            #expect(answer.headers.first(name: "retry-after") == "2")
        }
    }

    @Test("a body over the limit is a 413, with or without a content-length")
    func bodyLimit() async throws {
        var configuration = GatewayConfiguration()
        configuration.maxBodySize = 1024
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let big = chatBody("default", content: String(repeating: "x", count: 4000))
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: big)
            #expect(answer.status == 413)
            #expect(answer.errorCode == "request_too_large")

            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            let pieces = [ByteBuffer(string: String(big.prefix(800))), ByteBuffer(string: String(big.dropFirst(800)))]
            request.body = .stream(pieces.async, length: .unknown)
            let response = try await gateway.client.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 413)

            let small = try await gateway.chat("default")
            #expect(small.status == 200)
            #expect(server.requests.count == 1)
        }
    }

    @Test("unknown routes are 404 and wrong methods 405, in OpenAI's format")
    func unknownRoute() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let missing = try await gateway.send(.GET, "/v1/embeddings")
            #expect(missing.status == 404)
            #expect(missing.errorMessage.contains("/v1/embeddings"))
            let wrong = try await gateway.send(.GET, "/v1/chat/completions")
            #expect(wrong.status == 405)
        }
    }
}

extension Array where Element: Sendable {
    /// The elements as an async sequence.
    var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}

/// A health store that only records: the seam without a database.
final class PeerStore: HealthStore, @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [any HealthStoreSubscriber] = []
    private var transitions: [HealthTransition] = []
    var subscriber: (any HealthStoreSubscriber)? { lock.withLock { subscribers.first } }
    var published: [HealthTransition] { lock.withLock { transitions } }
    func subscribe(_ subscriber: any HealthStoreSubscriber) { lock.withLock { subscribers.append(subscriber) } }
    func publish(_ transition: HealthTransition) { lock.withLock { transitions.append(transition) } }
    func requestProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration) {}
}
