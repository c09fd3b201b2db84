import Foundation
import LLMFallbackTesting
import Testing

/// `llm-fallback chat`, run as a process against a MockLLMServer.
@Suite("chat")
struct ChatCommandTests {
    @Test("answers through the configured chain, sending the key but never printing it")
    func answers() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("Paris is the capital of France."))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--config", config, "What", "is the capital of France?"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "Paris is the capital of France.\n")
            let requests = server.requests(for: "primary-model")
            #expect(requests.count == 1)
            #expect(requests.first?.bodyText.contains("What is the capital of France?") == true)
            #expect(requests.first?.header("authorization") == "Bearer \(CommandRunner.secretKey)")
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("--stream prints the answer as it arrives")
    func streams() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("one two three four five"))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--stream", "--config", config, "Count"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "one two three four five\n")
            #expect(server.requests(for: "primary-model").first?.isStream == true)
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("--stream fails over before the first token, on another wire format")
    func streamFailsOver() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .status(503))
            server.script("backup-model", .text("streamed by the backup"))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--stream", "--verbose", "--config", config, "Hi"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "streamed by the backup\n")
            #expect(result.stderr.contains("failover: openai/primary-model -> anthropic/backup-model"))
            #expect(server.requests(for: "backup-model").first?.format == .anthropic)
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("reads the prompt from standard input when none is given")
    func promptFromStandardInput() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("Got it."))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--config", config],
                environment: CommandRunner.keyEnvironment,
                stdin: "A prompt from standard input\n"
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "Got it.\n")
            #expect(
                server.requests(for: "primary-model").first?.bodyText.contains("A prompt from standard input") == true
            )
        }
    }

    @Test("no prompt at all is a usage error (exit 2)")
    func emptyPrompt() async throws {
        try await withMockLLMServer { server in
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--config", config],
                environment: CommandRunner.keyEnvironment,
                stdin: "  \n"
            )
            #expect(result.status == 2)
            #expect(result.stderr.contains("no prompt"))
            #expect(server.requests.isEmpty)
        }
    }

    @Test("--json prints the whole response, with system, temperature and max tokens sent")
    func json() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("Paris.", usage: (prompt: 12, completion: 2)))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                [
                    "chat", "--json", "--system", "Be brief.", "--temperature", "0.25", "--max-tokens", "20",
                    "--config", config, "Capital of France?",
                ],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            )
            #expect(object["content"] as? String == "Paris.")
            #expect(object["provider"] as? String == "openai")
            #expect(object["provider_name"] as? String == "openai/primary-model")
            #expect(object["model"] as? String == "primary-model")
            #expect(object["attempts"] as? Int == 1)
            #expect(object["finish_reason"] as? String == "stop")
            #expect((object["latency_ms"] as? Double).map { $0 >= 0 } == true)
            let usage = try #require(object["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 12)
            #expect(usage["completion_tokens"] as? Int == 2)
            #expect(usage["total_tokens"] as? Int == 14)
            #expect((object["tool_calls"] as? [Any])?.isEmpty == true)
            let trace = try #require(object["trace"] as? [[String: Any]])
            #expect(trace.count == 1)
            #expect(trace.first?["outcome"] as? String == "success")

            let body = try #require(server.requests(for: "primary-model").first?.bodyText)
            #expect(body.contains("Be brief."))
            #expect(body.contains("0.25"))
            #expect(body.contains("20"))
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("--json with --stream prints one object per line, the last one the whole response")
    func streamedJSON() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .status(500))
            server.script("backup-model", .text("alpha beta gamma"))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--json", "--stream", "--config", config, "Hi"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let objects = try lines.map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            let deltas = objects.filter { $0["type"] as? String == "delta" }.compactMap { $0["content"] as? String }
            #expect(deltas.joined() == "alpha beta gamma")
            let last = try #require(objects.last)
            #expect(last["type"] as? String == "response")
            #expect(last["content"] as? String == "alpha beta gamma")
            #expect(last["provider_name"] as? String == "anthropic/backup-model")
            #expect(last["attempts"] as? Int == 2)
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("--verbose shows each attempt and the failover on standard error")
    func verboseFailover() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .status(500))
            server.script("backup-model", .text("The backup answers."))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--verbose", "--config", config, "Hello"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "The backup answers.\n")
            #expect(result.stderr.contains("attempt openai/primary-model #1: server_error (HTTP 500)"))
            #expect(
                result.stderr.contains(
                    "failover: openai/primary-model -> anthropic/backup-model (server_error, HTTP 500)"
                )
            )
            #expect(result.stderr.contains("attempt anthropic/backup-model #1: success"))
            #expect(result.stderr.contains("answered by anthropic/backup-model"))
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("without --verbose nothing but the answer is printed, even after a failover")
    func quietFailover() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .status(500))
            server.script("backup-model", .text("The backup answers."))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--config", config, "Hello"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0)
            #expect(result.stdout == "The backup answers.\n")
            #expect(result.stderr.isEmpty)
        }
    }

    @Test("exit 1 with the attempt trace on standard error when every provider fails; echoed keys stay hidden")
    func allProvidersFail() async throws {
        try await withMockLLMServer { server in
            server.script(
                "primary-model",
                .status(401, message: "Incorrect API key provided: \(CommandRunner.secretKey)")
            )
            server.script("backup-model", .status(503))
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--verbose", "--json", "--config", config, "Hello"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains("all providers failed"))
            #expect(result.stderr.contains("attempts:"))
            #expect(result.stderr.contains("1. openai/primary-model #1: authentication (401)"))
            #expect(result.stderr.contains("2. anthropic/backup-model #1: overloaded (503)"))
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("--chain picks a chain of the file; an unknown chain is a usage error")
    func chainOption() async throws {
        try await withMockLLMServer { server in
            server.script("backup-model", .text("from the second chain"))
            let extra = """
                  second:
                    providers:
                      - { name: anthropic, model: backup-model, api_key: "${TEST_ANTHROPIC_KEY}", base_url: "\(server.baseURL)" }
                """
            let config = try CommandRunner.writeConfig(twoProviderConfig(server, extraChains: extra))
            let result = try await CommandRunner.run(
                ["chat", "--chain", "second", "--config", config, "Hi"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "from the second chain\n")
            #expect(server.requests(for: "primary-model").isEmpty)

            let unknown = try await CommandRunner.run(
                ["chat", "--chain", "nope", "--config", config, "Hi"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(unknown.status == 2)
            #expect(unknown.stderr.contains("no chain named 'nope'"))
            #expect(unknown.stderr.contains("default, second"))
        }
    }

    @Test("the file is found through LLM_FALLBACK_CONFIG and ./llm-fallback.yaml")
    func configDiscovery() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .text("found it"))
            let path = try CommandRunner.writeConfig(twoProviderConfig(server))
            var environment = CommandRunner.keyEnvironment
            environment["LLM_FALLBACK_CONFIG"] = path
            let viaVariable = try await CommandRunner.run(["chat", "Hi"], environment: environment)
            #expect(viaVariable.status == 0, "\(viaVariable.stderr)")
            #expect(viaVariable.stdout == "found it\n")

            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            let viaDirectory = try await CommandRunner.run(
                ["chat", "Hi"],
                environment: CommandRunner.keyEnvironment,
                directory: directory
            )
            #expect(viaDirectory.status == 0, "\(viaDirectory.stderr)")
            #expect(viaDirectory.stdout == "found it\n")
        }
    }

    @Test("command-line options override the file: --timeout ends a request the file would let run")
    func timeoutOverride() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .hang)
            server.script("backup-model", .hang)
            let config = try CommandRunner.writeConfig(twoProviderConfig(server))
            let result = try await CommandRunner.run(
                ["chat", "--timeout", "300ms", "--config", config, "Hi"],
                environment: CommandRunner.keyEnvironment
            )
            #expect(result.status == 1)
            #expect(result.stderr.contains("all providers failed"))
            // Without the override the two hung providers would take 20 s (10 s each); the bound leaves room for
            // starting the debug binary while the whole suite loads the machine.
            #expect(result.duration < .seconds(15), "\(result.stderr)")
        }
    }

    @Test("without a file or a key in the environment, chat explains what to do and exits 2")
    func noProviders() async throws {
        let result = try await CommandRunner.run(["chat", "Hello"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("no providers configured"))
        #expect(result.stderr.contains("OPENAI_API_KEY"))
        #expect(result.stderr.contains("llm-fallback demo"))
    }

    @Test(
        "invalid option values are usage errors (exit 2)",
        arguments: [
            ["chat", "--temperature", "5", "Hi"],
            ["chat", "--max-tokens", "0", "Hi"],
            ["chat", "--timeout", "soon", "Hi"],
            ["chat", "--strategy", "fastest-ever", "Hi"],
            ["chat", "--no-such-option", "Hi"],
            ["no-such-command"],
        ]
    )
    func usageErrors(arguments: [String]) async throws {
        let result = try await CommandRunner.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.isEmpty)
    }
}
