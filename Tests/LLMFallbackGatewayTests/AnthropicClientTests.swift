import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import Testing

@Suite("The official anthropic Python client against the gateway")
struct AnthropicClientTests {
    @Test(
        "create, stream, failover across formats, tools, count_tokens and each error class with the anthropic package",
        .enabled("python3 cannot import anthropic: run `pip install anthropic` to include this test") {
            await pythonCanImport("anthropic")
        }
    )
    func pythonClient() async throws {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gateway-test-key"]
        configuration.maxBodySize = 256 * 1024
        configuration.modelRouting = ModelRouting(aliases: ["claude": ["claude-*"]])
        let claude = { (server: MockLLMServer, model: String) -> Provider in
            AnthropicSurfaceTests.anthropicProvider(on: server, name: "claude", model: model)
        }
        try await withGateway(
            configuration: configuration,
            chains: { server in
                var chainConfiguration = FallbackChain.Configuration()
                chainConfiguration.retry.maxRetryAfterWait = .zero
                chainConfiguration.circuitBreaker.failureThreshold = 1000
                let chain = { (providers: [Provider]) in FallbackChain(providers, configuration: chainConfiguration) }
                return [
                    "claude": chain([claude(server, "claude-upstream"), mockProvider("backup", model: "model-backup", on: server)]),
                    "failover": chain([claude(server, "claude-failing"), mockProvider("backup", model: "model-backup", on: server)]),
                    "tools": chain([mockProvider("primary", model: "model-tools", on: server)]),
                    "midstream": chain([claude(server, "claude-cut")]),
                    "ratelimited": chain([claude(server, "claude-limited"), mockProvider("backup", model: "model-limited", on: server)]),
                    "overloaded": chain([claude(server, "claude-overloaded")]),
                    "badrequest": chain([claude(server, "claude-refusing")]),
                    "rescue": MidStreamRescueGatewayTests.chain([
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-haiku-cut"),
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-sonnet-rescue"),
                    ]),
                    "rescue_translated": MidStreamRescueGatewayTests.chain([
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-haiku-cut-2"),
                        { () -> Provider in
                            var local = mockProvider("local", model: "model-rescue", on: server)
                            local.prefill = true
                            return local
                        }(),
                    ]),
                ]
            }
        ) { server, gateway in
            let overloaded = MockBehavior.status(529, message: "Overloaded", type: "overloaded_error")
            server.script("claude-failing", Array(repeating: overloaded, count: 4))
            server.script("model-tools", Array(repeating: .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#), count: 3))
            server.script("claude-cut", .cutStream(afterChunks: 1))
            server.script("claude-limited", .status(429, message: "slow down", type: "rate_limit_error", headers: ["retry-after": "7"]))
            server.script("model-limited", .status(429, message: "slow down", headers: ["retry-after": "9"]))
            server.script("claude-overloaded", overloaded)
            server.script("claude-refusing", .status(400, message: "messages: roles must alternate", type: "invalid_request_error"))
            server.script("claude-upstream", [.text("Hello from claude-upstream"), .text("Hello from claude-upstream"), .text("Hello from claude-upstream"), .raw(status: 200, body: #"{"input_tokens":1234}"#)])
            let answer = MidStreamRescueGatewayTests.answer
            server.script("claude-3-5-haiku-cut", .cutStream(afterChunks: 3, text: answer))
            server.script("claude-3-5-sonnet-rescue", .text(MidStreamRescueGatewayTests.rest))
            server.script("claude-3-5-haiku-cut-2", .cutStream(afterChunks: 3, text: answer))
            server.script("model-rescue", .text(MidStreamRescueGatewayTests.rest))
            let script = packageRoot.appendingPathComponent("scripts/gateway_anthropic_client_test.py").path
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", script, "--base-url", gateway.baseURL, "--api-key", "gateway-test-key"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(" passed, 0 failed"), "\(result.output)")
            #expect(!result.output.contains(secretKey))
            #expect(result.output.contains("ok   errors: 413"), "\(result.output)")
            #expect(result.output.contains("ok   rescue: the joined text is the answer"), "\(result.output)")
        }
    }
}
