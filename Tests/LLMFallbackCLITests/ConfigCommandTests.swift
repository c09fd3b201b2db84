import Foundation
import Testing

/// Configuration errors, as `chat` and `config validate` report them: file, line, key path, exit status 2.
@Suite("config file errors")
struct ConfigCommandTests {
    /// One kind of mistake, the line it is on, and what the message must say.
    struct Mistake: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var line: Int
        var keyPath: String
        var message: String
        var environment: [String: String] = [:]
        var testDescription: String { name }
    }

    static let mistakes: [Mistake] = [
        Mistake(
            name: "missing variable",
            yaml: """
                chains:
                  default:
                    providers:
                      - name: openai
                        model: gpt-4o
                        api_key: ${LLM_FALLBACK_TEST_UNSET_VARIABLE}
                """,
            line: 6,
            keyPath: "chains.default.providers[0].api_key",
            message: "environment variable LLM_FALLBACK_TEST_UNSET_VARIABLE is not set"
        ),
        Mistake(
            name: "unknown provider kind",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                      - name: openaj
                        model: gpt-4o
                """,
            line: 5,
            keyPath: "chains.default.providers[1].name",
            message: "unknown provider kind 'openaj'"
        ),
        Mistake(
            name: "bad duration",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                      - name: anthropic
                        model: claude-3-5-haiku-latest
                        timeout: abc
                """,
            line: 7,
            keyPath: "chains.default.providers[1].timeout",
            message: "invalid duration 'abc' (expected e.g. 30s, 250ms)"
        ),
        Mistake(
            name: "wrong type",
            yaml: """
                chains:
                  default:
                    circuit_breaker:
                      failure_threshold: several
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            line: 4,
            keyPath: "chains.default.circuit_breaker.failure_threshold",
            message: "expected an integer, got 'several'"
        ),
        Mistake(
            name: "list expected",
            yaml: """
                chains:
                  default:
                    providers: openai
                """,
            line: 3,
            keyPath: "chains.default.providers",
            message: "expected a list, got 'openai'"
        ),
        Mistake(
            name: "unknown key",
            yaml: """
                chains:
                  default:
                    request_timout: 30s
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            line: 3,
            keyPath: "chains.default.request_timout",
            message: "unknown key 'request_timout' (did you mean 'request_timeout'?)"
        ),
        Mistake(
            name: "missing model",
            yaml: """
                chains:
                  default:
                    providers:
                      - name: openai
                        api_key: sk-whatever
                """,
            line: 4,
            keyPath: "chains.default.providers[0].model",
            message: "missing required key 'model'"
        ),
        Mistake(
            name: "unknown strategy",
            yaml: """
                chains:
                  default:
                    strategy: quickest
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            line: 3,
            keyPath: "chains.default.strategy",
            message: "unknown strategy 'quickest'"
        ),
        Mistake(
            name: "invalid YAML",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o
                """,
            line: 5,
            keyPath: "",
            message: "invalid YAML"
        ),
        Mistake(
            name: "absurd duration",
            yaml: """
                chains:
                  default:
                    timeout: 100000000000s
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            line: 3,
            keyPath: "chains.default.timeout",
            message: "duration '100000000000s' is too long (at most 24h)"
        ),
        Mistake(
            name: "negative weight",
            yaml: """
                chains:
                  default:
                    strategy: weighted
                    providers:
                      - { name: openai, model: gpt-4o, weight: -1 }
                """,
            line: 5,
            keyPath: "chains.default.providers[0].weight",
            message: "must be between 0.0 and 1000000.0, got -1"
        ),
        Mistake(
            name: "infinite weight",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o, weight: 1e999 }
                """,
            line: 4,
            keyPath: "chains.default.providers[0].weight",
            message: "expected a number, got '1e999'"
        ),
        Mistake(
            name: "every weight zero",
            yaml: """
                chains:
                  default:
                    strategy: weighted
                    providers:
                      - { name: openai, model: gpt-4o, weight: 0 }
                      - { name: anthropic, model: claude-3-5-haiku-latest, weight: 0 }
                """,
            line: 3,
            keyPath: "chains.default.strategy",
            message: "every provider's weight is 0: the weighted strategy needs one above 0"
        ),
        Mistake(
            name: "overflowing integer",
            yaml: """
                chains:
                  default:
                    max_retries: 99999999999999999999999
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            line: 3,
            keyPath: "chains.default.max_retries",
            message: "must be between 0 and 100, got 99999999999999999999999"
        ),
        Mistake(
            name: "duplicate key",
            yaml: """
                chains:
                  default:
                    timeout: 1s
                    timeout: 2s
                    providers:
                      - { name: openai, model: gpt-4o }
                """,
            // Yams refuses duplicates while parsing, at the mapping's first line (JSONDecoder would keep one).
            line: 3,
            keyPath: "",
            message: "duplicate key 'timeout'"
        ),
        Mistake(
            name: "empty variable in a base URL",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: my-vllm, model: qwen, base_url: "${LLM_FALLBACK_TEST_EMPTY}" }
                """,
            line: 4,
            keyPath: "chains.default.providers[0].base_url",
            message: "the base URL is empty: ${LLM_FALLBACK_TEST_EMPTY} is set to the empty string",
            environment: ["LLM_FALLBACK_TEST_EMPTY": ""]
        ),
        Mistake(
            name: "empty variable in a provider key",
            yaml: """
                chains:
                  default:
                    providers:
                      - name: openai
                        model: gpt-4o
                        api_key: ${LLM_FALLBACK_TEST_EMPTY}
                """,
            line: 6,
            keyPath: "chains.default.providers[0].api_key",
            message: "the API key is empty: ${LLM_FALLBACK_TEST_EMPTY} is set to the empty string",
            environment: ["LLM_FALLBACK_TEST_EMPTY": ""]
        ),
        Mistake(
            name: "empty variable in a gateway key",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                server:
                  api_keys:
                    - ${LLM_FALLBACK_TEST_EMPTY}
                """,
            line: 7,
            keyPath: "server.api_keys[0]",
            message: "the API key is empty: ${LLM_FALLBACK_TEST_EMPTY} is set to the empty string",
            environment: ["LLM_FALLBACK_TEST_EMPTY": ""]
        ),
        Mistake(
            name: "no place for any request",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                server:
                  limits:
                    max_concurrent_requests: 0
                """,
            line: 7,
            keyPath: "server.limits.max_concurrent_requests",
            message: "must be between 1 and 1000000, got 0"
        ),
        Mistake(
            name: "zero header timeout",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                server:
                  limits: { header_timeout: 0 }
                """,
            line: 6,
            keyPath: "server.limits.header_timeout",
            message: "duration must be greater than zero, got '0'"
        ),
        Mistake(
            name: "unknown limit",
            yaml: """
                chains:
                  default:
                    providers:
                      - { name: openai, model: gpt-4o }
                server:
                  limits: { max_streams: 10 }
                """,
            line: 6,
            keyPath: "server.limits.max_streams",
            message: "unknown key 'max_streams'"
        ),
    ]

    @Test("chat exits 2 and names file, line and key", arguments: mistakes)
    func chatReportsMistake(_ mistake: Mistake) async throws {
        let path = try CommandRunner.writeConfig(mistake.yaml)
        let result = try await CommandRunner.run(
            ["chat", "--config", path, "Hello"],
            environment: mistake.environment.merging(["OPENAI_API_KEY": CommandRunner.secretKey]) { $1 }
        )
        #expect(result.status == 2, "\(result.stderr)")
        let location =
            mistake.keyPath.isEmpty ? "\(path):\(mistake.line): " : "\(path):\(mistake.line): \(mistake.keyPath): "
        #expect(result.stderr.contains(location + mistake.message), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
        #expect(result.stdout.isEmpty)
        CommandRunner.expectNoKeys(result)
    }

    @Test("config validate exits 2 and names file, line and key", arguments: mistakes)
    func validateReportsMistake(_ mistake: Mistake) async throws {
        let path = try CommandRunner.writeConfig(mistake.yaml)
        let result = try await CommandRunner.run(
            ["config", "validate", "--config", path],
            environment: mistake.environment
        )
        #expect(result.status == 2, "\(result.stderr)")
        let location =
            mistake.keyPath.isEmpty ? "\(path):\(mistake.line): " : "\(path):\(mistake.line): \(mistake.keyPath): "
        #expect(result.stderr.contains(location + mistake.message), "\(result.stderr)")
    }

    @Test("config validate reports every problem at once")
    func everyProblem() async throws {
        let path = try CommandRunner.writeConfig(
            """
            chains:
              default:
                strategy: ordered
                timeout: 10 seconds
                circuit_breaker: { failure_threshold: 0, recovery_timeout: 1m }
                providers:
                  - name: openai
                    model: gpt-4o
                    api_key: ${LLM_FALLBACK_TEST_UNSET_ONE}
                  - name: nonesuch
                    model: x
                  - name: anthropic
                    model: claude
                    weight: heavy
                    colour: blue
            server:
              port: 99999
            """
        )
        let result = try await CommandRunner.run(["config", "validate", "--config", path])
        #expect(result.status == 2)
        let expected = [
            "\(path):4: chains.default.timeout: invalid duration '10 seconds'",
            "\(path):5: chains.default.circuit_breaker.failure_threshold: must be between 1 and 1000, got 0",
            "\(path):9: chains.default.providers[0].api_key: environment variable LLM_FALLBACK_TEST_UNSET_ONE is not set",
            "\(path):10: chains.default.providers[1].name: unknown provider kind 'nonesuch'",
            "\(path):14: chains.default.providers[2].weight: expected a number, got 'heavy'",
            "\(path):15: chains.default.providers[2].colour: unknown key 'colour'",
            "\(path):17: server.port: must be between 0 and 65535, got 99999",
        ]
        for line in expected {
            #expect(result.stderr.contains(line), "missing: \(line)\n\(result.stderr)")
        }
        #expect(result.stderr.contains("7 problems found"))
    }

    @Test("a missing file is a configuration error")
    func missingFile() async throws {
        let result = try await CommandRunner.run(["config", "validate", "--config", "/nonexistent/llm-fallback.yaml"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("/nonexistent/llm-fallback.yaml: no such file"))

        let chat = try await CommandRunner.run(
            ["chat", "Hi"],
            environment: ["LLM_FALLBACK_CONFIG": "/nonexistent/other.yaml"]
        )
        #expect(chat.status == 2)
        #expect(chat.stderr.contains("/nonexistent/other.yaml: no such file"))
    }

    @Test("config validate without any file explains where it looks")
    func noFile() async throws {
        let result = try await CommandRunner.run(["config", "validate"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("LLM_FALLBACK_CONFIG"))
    }

    @Test("the example file shipped in the repository is valid")
    func exampleFile() async throws {
        let example = CommandRunner.packageRoot.appendingPathComponent("llm-fallback.example.yaml").path
        let environment = [
            "OPENAI_API_KEY": CommandRunner.secretKey,
            "ANTHROPIC_API_KEY": CommandRunner.secondSecretKey,
            "GEMINI_API_KEY": "gemini-test-key-ZEBRA",
            "GROQ_API_KEY": "groq-test-key-ZEBRA",
            "LLM_FALLBACK_GATEWAY_KEY": "gateway-test-key-OKAPI",
        ]
        let result = try await CommandRunner.run(["config", "validate", "--config", example], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\(example): valid"))
        #expect(result.stdout.contains("chain default"))
        #expect(result.stdout.contains("chain fast"))
        #expect(result.stdout.contains("chain local"))
        #expect(result.stdout.contains("server: 127.0.0.1:8080"))
        #expect(!result.stderr.contains("error"))
        CommandRunner.expectNoKeys(result)

        // Without the variables it references, every one is named.
        let bare = try await CommandRunner.run(["config", "validate", "--config", example])
        #expect(bare.status == 2)
        for variable in [
            "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY", "LLM_FALLBACK_GATEWAY_KEY",
        ] {
            #expect(bare.stderr.contains("environment variable \(variable) is not set"))
        }
    }
}
