import Foundation
import LLMFallbackTesting
import Testing

/// `llm-fallback check`, run as a process against a MockLLMServer.
@Suite("check")
struct CheckCommandTests {
    @Test("prints a table per chain and provider; exit 0 while every chain has a working provider")
    func someProvidersDown() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("OK"))
            server.script("backup-model", .status(500))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["check", "--config", config],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("CHAIN") == true)
            #expect(lines.first?.contains("REACHABLE") == true)
            let primary = try #require(lines.first { $0.contains("openai/primary-model") })
            #expect(primary.contains("yes"))
            #expect(primary.contains("ms"))
            let backup = try #require(lines.first { $0.contains("anthropic/backup-model") && $0.hasPrefix("default") })
            #expect(backup.contains("no"))
            #expect(backup.contains("server_error (HTTP 500)"))
            #expect(result.stdout.contains("chain default: 1 of 2 providers working"))
            // Each provider alone, with the tiny request, no retries.
            #expect(server.requests(for: "primary-model").count == 1)
            #expect(server.requests(for: "backup-model").count == 1)
            #expect(server.requests(for: "primary-model").first?.bodyText.contains("Reply with OK") == true)
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("exit 1 when a chain has no working provider")
    func chainDown() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("OK"))
            server.script("backup-model", .status(401))
            server.script("lonely-model", .status(429, headers: ["retry-after": "30"]))
            let extra = """
                  broken:
                    providers:
                      - { name: openai, model: lonely-model, api_key: "${TEST_OPENAI_KEY}", base_url: "\(server.openAIBaseURL)" }
                """
            let config = try CommandRunner.writeConfig(twoProviderConfig(server, extraChains: extra))
            let result = try await CommandRunner.run(
                ["check", "--config", config],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
            let broken = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("broken") })
            #expect(broken.contains("openai/lonely-model"))
            #expect(broken.contains("rate_limited (HTTP 429)"))
            #expect(result.stdout.contains("authentication (HTTP 401)"))
            #expect(result.stdout.contains("chain default: 1 of 2 providers working"))
            #expect(result.stdout.contains("chain broken: 0 of 1 providers working, no working provider"))
            CommandRunner.expectNoKeys(result)

            let onlyDefault = try await CommandRunner.run(
                ["check", "--chain", "default", "--json", "--config", config],
                environment: CommandRunner.keyEnvironment
            )
            #expect(onlyDefault.status == 0)
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(onlyDefault.stdout.utf8)) as? [String: Any]
            )
            let providers = try #require(object["providers"] as? [[String: Any]])
            #expect(providers.count == 2)
            #expect(providers.first?["reachable"] as? Bool == true)
            #expect(providers.last?["error_class"] as? String == "authentication")
        }
    }
}

/// `llm-fallback demo`, run as a process: plain output when not on a terminal.
@Suite("demo")
struct DemoCommandTests {
    @Test("tells the whole story in under a minute, in plain lines")
    func demo() async throws {
        let result = try await CommandRunner.run(["demo"], timeout: .seconds(90))
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.duration < .seconds(60))
        let keyLines = [
            "primary is down",
            "failover: openai/gpt-4o -> anthropic/claude-3-5-haiku-latest -> google/gemini-2.0-flash",
            "failover: openai/gpt-4o -> anthropic/claude-3-5-haiku-latest",
            "circuit open: openai/gpt-4o",
            "skipped openai/gpt-4o: circuit open",
            "half-open probe",
            "recovered: openai/gpt-4o",
            "rate limited: retry after 1s",
            "skipped openai/gpt-4o: honouring retry-after",
            "latency routing picked google/gemini-2.0-flash",
            "no first token from openai/gpt-4o within 1s: failed over before anything reached the user; streamed by anthropic/claude-3-5-haiku-latest",
            "stream interrupted after",
            "never a silently truncated answer",
            "hedging: openai/gpt-4o had not answered within 300ms",
            "answered by anthropic/claude-3-5-haiku-latest",
            "rescued mid-stream: openai/gpt-4o was cut after three chunks; anthropic/claude-3-5-haiku-latest was asked to go on from exactly there, and the user got one answer: \"The capital of France is Paris, which is also its largest city.\"",
            "1 failed over before the first token, 1 cut stream(s) ended as a visible interruption, 1 finished by the next provider (mid_stream: continue); hedging answered 1 slow request(s) early",
            "Summary",
            "23 answered (100%), 0 failed",
            "Every request got an answer",
        ]
        for line in keyLines {
            #expect(result.stdout.contains(line), "missing: \(line)")
        }
        // The acts come in order.
        let order = [
            "primary is down", "circuit open", "half-open probe", "recovered", "rate limited", "latency routing picked",
            "no first token", "stream interrupted", "rescued mid-stream", "hedging:", "Summary",
        ]
        let positions = order.compactMap { result.stdout.range(of: $0)?.lowerBound }
        #expect(positions.count == order.count)
        #expect(positions == positions.sorted())
        // Not a terminal: no escape sequences, and the health table is printed as plain lines.
        #expect(!result.stdout.contains("\u{1B}["))
        #expect(result.stdout.contains("PROVIDER"))
        #expect(result.stdout.contains("BREAKER"))
        #expect(result.stderr.isEmpty)
    }
}
