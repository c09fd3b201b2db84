import Foundation
import LLMFallback
import LLMFallbackTesting
import NIOHTTP1
import Testing

@testable import LLMFallbackGateway

/// Clients that send their own model names reach a chain by name, alias, pattern or default (issue 15); Anthropic's
/// clients authenticate with `x-api-key` and list models in Anthropic's format.
@Suite("Model routing")
struct ModelRoutingTests {
    @Test("globs", arguments: [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-*", true), ("claude-sonnet-", "claude-sonnet-*", true),
        ("claude-haiku-4-5", "claude-sonnet-*", false), ("gpt-4o", "*", true), ("a-b-c", "a*c", true),
        ("abc", "a*b*c*d", false), ("claude-3-7-sonnet-latest", "claude-*-sonnet-*", true), ("x", "", false),
        (String(repeating: "a", count: 400), String(repeating: "*a", count: 100) + "b", false),
    ])
    func globs(_ case_: (String, String, Bool)) {
        #expect(ModelRouter.matches(Array(case_.0.utf8), Array(case_.1.utf8)) == case_.2)
    }

    @Test("a name wins over an alias, an exact alias over a pattern, the longest pattern over a shorter, then the default")
    func precedence() {
        let router = ModelRouter(
            chainNames: ["claude", "sonnet", "default", "claude-sonnet-4-5"],
            routing: ModelRouting(
                aliases: ["claude": ["claude-*", "claude-3-7-sonnet-latest"], "sonnet": ["claude-sonnet-*"]],
                defaultChain: "default"))
        #expect(router.chain(for: "claude-sonnet-4-5") == "claude-sonnet-4-5")
        #expect(router.chain(for: "claude-3-7-sonnet-latest") == "claude")
        #expect(router.chain(for: "claude-sonnet-4-5-20250929") == "sonnet")
        #expect(router.chain(for: "claude-haiku-4-5") == "claude")
        #expect(router.chain(for: "gpt-4o") == "default")
        #expect(ModelRouter(chainNames: ["a"], routing: ModelRouting()).chain(for: "b") == nil)
    }

    @Test("an alias claimed by two chains, or naming another chain, or an unknown default, is a configuration error")
    func validation() {
        #expect(throws: GatewayConfigurationError.self) {
            try ModelRouting(aliases: ["a": ["x-*"], "b": ["x-*"]]).validate(chainNames: ["a", "b"])
        }
        #expect(throws: GatewayConfigurationError.self) {
            try ModelRouting(aliases: ["a": ["b"]]).validate(chainNames: ["a", "b"])
        }
        #expect(throws: GatewayConfigurationError.self) {
            try ModelRouting(defaultChain: "missing").validate(chainNames: ["a"])
        }
        #expect(throws: Never.self) {
            try ModelRouting(aliases: ["a": ["x-*", "y"], "b": ["x-1"]], defaultChain: "b").validate(chainNames: ["a", "b"])
        }
    }

    @Test("through the gateway: aliases, patterns and the default route; /v1/models lists names and exact aliases")
    func throughTheGateway() async throws {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gateway-test-key"]
        configuration.modelRouting = ModelRouting(aliases: ["default": ["claude-sonnet-*", "claude-3-7-sonnet-latest"]], defaultChain: "other")
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            ["default": mockChain(on: server), "other": mockChain(on: server, models: [("backup", "model-backup")])]
        }
        try await withGateway(configuration: configuration, chains: chains) { _, gateway in
            for (model, answeredBy) in [
                ("claude-sonnet-4-5-20250929", "model-primary"), ("claude-3-7-sonnet-latest", "model-primary"),
                ("default", "model-primary"), ("gpt-4o", "model-backup"),
            ] {
                let answer = try await gateway.send(.POST, "/v1/chat/completions?beta=true", body: chatBody(model), bearer: "gateway-test-key")
                #expect(answer.status == 200, "\(model): \(answer.body)")
                #expect(answer.headers.first(name: "x-llm-fallback-model") == answeredBy, "\(model)")
            }
            let models = try await gateway.send(.GET, "/v1/models", bearer: "gateway-test-key")
            let ids = (models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == ["claude-3-7-sonnet-latest", "default", "other"])
        }
    }

    @Test("x-api-key is accepted as well as Authorization: Bearer, and /v1/models answers Anthropic's clients in their format")
    func anthropicClients() async throws {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gateway-test-key"]
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let withKey = try await gateway.send(
                .GET, "/v1/models", headers: [("x-api-key", "gateway-test-key"), ("anthropic-version", "2023-06-01")])
            #expect(withKey.status == 200, "\(withKey.body)")
            let data = try #require(withKey.json["data"] as? [[String: Any]])
            #expect(data.first?["type"] as? String == "model")
            #expect(data.first?["id"] as? String == "default")
            #expect((data.first?["created_at"] as? String)?.hasSuffix("Z") == true)
            #expect(withKey.json["has_more"] as? Bool == false)
            #expect(withKey.json["first_id"] as? String == "default")
            let one = try await gateway.send(
                .GET, "/v1/models/default", headers: [("x-api-key", "gateway-test-key"), ("anthropic-version", "2023-06-01")])
            #expect(one.json["type"] as? String == "model" && one.json["id"] as? String == "default")
            let wrong = try await gateway.send(.GET, "/v1/models", headers: [("x-api-key", "not-the-key")])
            #expect(wrong.status == 401)
            let empty = try await gateway.send(.GET, "/v1/models", headers: [("x-api-key", "")])
            #expect(empty.status == 401)
            let chat = try await gateway.send(
                .POST, "/v1/chat/completions", body: chatBody("default"), headers: [("x-api-key", "gateway-test-key")])
            #expect(chat.status == 200)
        }
    }
}
