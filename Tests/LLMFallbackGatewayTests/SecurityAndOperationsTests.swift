import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@Suite("Authentication, secrets, health and metrics")
struct SecurityAndOperationsTests {
    @Test("with api keys, every route but /health needs a valid bearer key")
    func authentication() async throws {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gw-key-one", "gw-key-two"]
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let missing = try await gateway.chat("default")
            #expect(missing.status == 401)
            #expect(missing.errorCode == "missing_api_key")
            #expect(missing.error["type"] as? String == "invalid_request_error")

            let wrong = try await gateway.chat("default", bearer: "gw-key-on")
            #expect(wrong.status == 401)
            #expect(wrong.errorCode == "invalid_api_key")
            let longer = try await gateway.chat("default", bearer: "gw-key-one-and-more")
            #expect(longer.status == 401)
            let notBearer = try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("default"), headers: [("authorization", "Basic gw-key-one")])
            #expect(notBearer.status == 401)
            #expect(server.requests.isEmpty)

            let first = try await gateway.chat("default", bearer: "gw-key-one")
            #expect(first.status == 200)
            let second = try await gateway.chat("default", bearer: "gw-key-two")
            #expect(second.status == 200)

            for path in ["/v1/models", "/health/providers", "/metrics", "/nothing"] {
                let refused = try await gateway.send(.GET, path)
                #expect(refused.status == 401, "\(path)")
                let allowed = try await gateway.send(.GET, path, bearer: "gw-key-two")
                #expect(allowed.status != 401, "\(path)")
            }
            let health = try await gateway.send(.GET, "/health")
            #expect(health.status == 200)
            #expect(health.json["status"] as? String == "ok")
        }
    }

    @Test("provider keys never appear in responses, errors, headers or logs")
    func keysNeverLeak() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(401, message: "Incorrect API key provided: \(secretKey)"))
            server.script("model-backup", .status(500, message: "backend failed for key \(secretKey)"))
            var answers: [HTTPAnswer] = []
            answers.append(try await gateway.chat("default"))
            answers.append(try await gateway.chat("default", stream: true))
            server.script("model-backup", .cutStream(afterChunks: 1))
            answers.append(try await gateway.chat("default", stream: true))
            answers.append(try await gateway.send(.GET, "/health/providers"))
            answers.append(try await gateway.send(.GET, "/metrics"))
            answers.append(try await gateway.send(.GET, "/v1/models"))
            #expect(answers[0].status == 502)
            for answer in answers {
                #expect(!answer.body.contains(secretKey))
                #expect(!answer.body.contains("SUPERSECRET"))
                for header in answer.headers {
                    #expect(!header.value.contains("SUPERSECRET"))
                }
            }
            #expect(server.requests.first?.header("authorization") == "Bearer \(secretKey)", "the key does reach the provider")
            #expect(!gateway.logs.all.isEmpty)
            #expect(!gateway.logs.all.contains { $0.contains("SUPERSECRET") })
        }
    }

    @Test("/metrics serves Prometheus text with the gateway's and the library's metrics")
    func metrics() async throws {
        GatewayMetrics.bootstrap()
        try await withMockLLMServer { server in
            // Built after the bootstrap, so the chain's counters land in the registry.
            let chain = mockChain(on: server)
            server.script("model-primary", .status(500))
            try await withGateway(chains: ["default": chain]) { gateway in
                _ = try await gateway.chat("default")
                _ = try await gateway.chat("default", stream: true)
                _ = try await gateway.chat("nope")
                let metrics = try await gateway.send(.GET, "/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.headers.first(name: "content-type")?.hasPrefix("text/plain") == true)
                let text = metrics.body
                for name in [
                    "llm_fallback_gateway_requests_total", "llm_fallback_gateway_requests_in_flight",
                    "llm_fallback_gateway_open_streams", "llm_fallback_gateway_request_duration_seconds",
                    "llm_fallback_requests_total", "llm_fallback_attempts_total", "llm_fallback_errors_total",
                    "llm_fallback_failovers_total",
                ] {
                    #expect(text.contains(name), "\(name) missing")
                }
                #expect(text.contains(#"llm_fallback_gateway_requests_total{route="chat_completions",status="200"}"#))
                #expect(text.contains(#"llm_fallback_gateway_requests_total{route="chat_completions",status="404"}"#))
                #expect(!text.contains("SUPERSECRET"))
            }
        }
    }
}
