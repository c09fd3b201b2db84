import Foundation
import LLMFallback
import Testing

@testable import llm_fallback

/// The configuration loader, directly: what a valid file turns into, and the small parsers behind it.
@Suite("config loader")
struct ConfigLoaderTests {
    @Test(
        "durations",
        arguments: [
            ("30s", Duration.seconds(30)), ("250ms", .milliseconds(250)), ("2m", .seconds(120)),
            ("1.5s", .milliseconds(1500)),
            ("1m30s", .seconds(90)), ("1h", .seconds(3600)), ("0", .zero), (" 5s ", .seconds(5)),
        ]
    )
    func durations(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test("not durations", arguments: ["abc", "30", "s", "1.s", ".5s", "10 seconds", "5x", "-1s", ""])
    func notDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test(
        "durations past a day are too long, however many digits",
        arguments: ["100000000000s", "24h1ms", "25h", "99999999999999999999999999999999999999999h", "1441m"]
    )
    func tooLong(text: String) {
        #expect(DurationText.read(text) == .tooLong)
        #expect(DurationText.parse(text) == nil)
    }

    @Test("a day is the longest duration")
    func longest() {
        #expect(DurationText.read("24h") == .duration(.seconds(86_400)))
        #expect(DurationText.read("23h59m59s") == .duration(.seconds(86_399)))
        #expect(DurationText.format(DurationText.longest) == "24h")
        #expect(DurationText.format(.seconds(Int64.max)).hasSuffix("s+"))
    }

    @Test("an empty variable is reported as such")
    func emptyVariables() {
        let result = VariableExpansion.expand("${EMPTY}/${SET}", environment: ["EMPTY": "", "SET": "x"])
        #expect(result.text == "/x")
        #expect(result.empty == ["EMPTY"])
        #expect(result.missing.isEmpty)
    }

    @Test("dump() and descriptions of the loaded file never show a key")
    func noKeysInReflection() throws {
        let yaml = """
            chains:
              default:
                providers:
                  - { name: openai, model: gpt-4o, api_key: "${KEY}", headers: { X-Team: "${KEY}" } }
            server:
              api_keys: ["${GATEWAY}"]
            """
        let file = try ConfigFile.parse(yaml, file: "keys.yaml", environment: ["KEY": "sk-REFLECTED-1", "GATEWAY": "gw-REFLECTED-2"])
        for subject in [file as Any, file.chains[0] as Any, file.server as Any] {
            var dumped = ""
            dump(subject, to: &dumped)
            for text in [dumped, String(describing: subject), String(reflecting: subject)] {
                #expect(!text.contains("REFLECTED"), "\(text)")
            }
        }
    }

    @Test("variable expansion")
    func expansion() {
        let environment = ["HOST": "example.com", "EMPTY": ""]
        #expect(
            VariableExpansion.expand("https://${HOST}/v1", environment: environment).text == "https://example.com/v1"
        )
        #expect(VariableExpansion.expand("${MISSING:-fallback}", environment: environment).text == "fallback")
        #expect(VariableExpansion.expand("${EMPTY:-fallback}", environment: environment).text == "fallback")
        #expect(VariableExpansion.expand("${EMPTY}", environment: environment).text == "")
        #expect(VariableExpansion.expand("cost: $$5", environment: environment).text == "cost: $5")
        #expect(VariableExpansion.expand("$HOST", environment: environment).text == "$HOST")
        #expect(VariableExpansion.expand("${A}${B}", environment: environment).missing == ["A", "B"])
        #expect(VariableExpansion.expand("${HOST", environment: environment).problems.count == 1)
        #expect(VariableExpansion.expand("${1BAD}", environment: environment).problems.count == 1)
    }

    @Test("a full file becomes chain configurations and providers")
    func fullFile() throws {
        let yaml = """
            chains:
              main:
                strategy: latency
                timeout: 20s
                request_timeout: 45s
                max_retries: 1
                circuit_breaker: { failure_threshold: 2, recovery_timeout: 15s, half_open_max_probes: 3, max_recovery_timeout: 2m, count_rate_limits_with_retry_after: true }
                retry: { max_retry_after_wait: 3s, max_retry_after_skip: 1m, budget: { ratio: 0.5, minimum: 4, window: 30s } }
                mid_stream: restart
                stream: { first_token: 5s, idle: 10s, total: 2m }
                providers:
                  - name: openai
                    model: gpt-4o
                    api_key: ${KEY}
                    timeout: 8s
                    weight: 2.5
                    label: primary
                    headers: { X-Team: "${TEAM:-core}" }
                  - name: anthropic
                    model: claude-3-5-haiku-latest
                    api_version: "2023-06-01"
                    max_retries: 4
                  - name: my-vllm
                    model: qwen
                    base_url: http://gpu:8000/v1
              off:
                circuit_breaker: false
                providers:
                  - { name: gemini, model: gemini-2.0-flash }
            server:
              host: 0.0.0.0
              port: 9090
              api_keys: ["${GATEWAY}", second-key]
              max_body_size: 1MiB
            """
        let file = try ConfigFile.parse(yaml, file: "test.yaml", environment: ["KEY": "sk-1", "GATEWAY": "gw"])
        #expect(file.chains.map(\.name) == ["main", "off"])
        let main = try #require(file.chain(named: "main"))
        #expect(main.configuration.strategy == .latency)
        #expect(main.configuration.timeout == .seconds(20))
        #expect(main.configuration.requestTimeout == .seconds(45))
        #expect(main.configuration.circuitBreaker.failureThreshold == 2)
        #expect(main.configuration.circuitBreaker.recoveryTimeout == .seconds(15))
        #expect(main.configuration.circuitBreaker.halfOpenMaxProbes == 3)
        #expect(main.configuration.circuitBreaker.maxRecoveryTimeout == .seconds(120))
        #expect(main.configuration.circuitBreaker.countsRateLimitsWithRetryAfter)
        #expect(main.configuration.retry.maxRetryAfterWait == .seconds(3))
        #expect(main.configuration.retry.maxRetryAfterSkip == .seconds(60))
        #expect(main.configuration.retry.budget == RetryBudget(ratio: 0.5, minimumRetries: 4, window: .seconds(30)))
        #expect(main.configuration.midStreamPolicy == .restart)
        #expect(
            main.configuration.streamTimeouts
                == StreamTimeouts(firstToken: .seconds(5), idle: .seconds(10), total: .seconds(120))
        )
        #expect(main.providers.count == 3)
        let first = main.providers[0]
        #expect(first.kind == "openai")
        #expect(first.name == "primary")
        #expect(first.apiKey == "sk-1")
        #expect(first.timeout == .seconds(8))
        #expect(first.weight == 2.5)
        #expect(first.maxRetries == 1)
        #expect(first.headers == ["X-Team": "core"])
        #expect(main.providers[1].apiVersion == "2023-06-01")
        #expect(main.providers[1].maxRetries == 4)
        #expect(main.providers[1].apiKey == nil)
        #expect(main.providers[2].baseURL == "http://gpu:8000/v1")
        #expect(file.chain(named: "off")?.configuration.circuitBreaker.isEnabled == false)
        #expect(
            file.server
                == ServerSettings(host: "0.0.0.0", port: 9090, apiKeys: ["gw", "second-key"], maxBodySize: 1 << 20)
        )
        #expect(!(file.server?.description.contains("gw") ?? true))
        // anthropic and gemini without a key variable: warned about, not an error.
        #expect(
            file.warnings.contains {
                $0.keyPath == "chains.main.providers[1]" && $0.message.contains("ANTHROPIC_API_KEY")
            }
        )
    }

    @Test("aliases and default_chain, and an alias claimed by two chains")
    func modelRouting() throws {
        let yaml = """
            chains:
              claude:
                aliases: ["claude-sonnet-*", claude-3-7-sonnet-latest]
                providers: [{ name: anthropic, model: claude-sonnet-4-5, api_key: k }]
              default:
                providers: [{ name: openai, model: gpt-4o, api_key: k }]
            server: { default_chain: default }
            """
        let file = try ConfigFile.parse(yaml, file: "r.yaml", environment: [:])
        #expect(file.chains.first { $0.name == "claude" }?.aliases == ["claude-sonnet-*", "claude-3-7-sonnet-latest"])
        #expect(file.server?.defaultChain == "default")
        #expect(file.server?.streamKeepAlive == .seconds(15), "the default")
        for (text, expected) in [("5s", Duration?.some(.seconds(5))), ("0", nil)] {
            let keepAlive = try ConfigFile.parse(
                "chains: { a: { providers: [{ name: openai, model: m, api_key: k }] } }\nserver: { stream_keep_alive: \(text) }",
                file: "k.yaml", environment: [:])
            #expect(keepAlive.server?.streamKeepAlive == expected, "\(text)")
        }
        #expect(throws: ConfigErrors.self) {
            try ConfigFile.parse(
                "chains: { a: { providers: [{ name: openai, model: m, api_key: k }] } }\nserver: { stream_keep_alive: 1ms }",
                file: "k.yaml", environment: [:])
        }
        let bad = """
            chains:
              a:
                aliases: ["x-*", b]
                providers: [{ name: openai, model: gpt-4o, api_key: k }]
              b:
                aliases: ["x-*"]
                providers: [{ name: openai, model: gpt-4o-mini, api_key: k }]
            server: { default_chain: nowhere }
            """
        do {
            _ = try ConfigFile.parse(bad, file: "bad.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.contains { $0.hasPrefix("bad.yaml:6:") && $0.contains("'x-*' is claimed by two chains, 'a' and 'b'") }, "\(messages)")
            #expect(messages.contains { $0.hasPrefix("bad.yaml:3:") && $0.contains("'b' is the name of another chain") }, "\(messages)")
            #expect(messages.contains { $0.contains("the default chain 'nowhere' is not a chain") }, "\(messages)")
        }
    }

    @Test("drop_params and strict_params")
    func parameterSettings() throws {
        let yaml = """
            chains:
              main:
                strict_params: true
                providers:
                  - { name: openai, model: gpt-4o, api_key: k, drop_params: [store, service_tier] }
            """
        let file = try ConfigFile.parse(yaml, file: "p.yaml", environment: [:])
        #expect(file.chains[0].configuration.strictParameters)
        #expect(file.chains[0].providers[0].dropParameters == ["store", "service_tier"])
        let bad = """
            chains:
              main:
                strict_params: maybe
                providers:
                  - { name: openai, model: gpt-4o, api_key: k, drop_params: [model, store, store, ""] }
            """
        do {
            _ = try ConfigFile.parse(bad, file: "bad.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.contains { $0.contains("strict_params") })
            #expect(messages.contains { $0.contains("'model' cannot be dropped") })
            #expect(messages.contains { $0.contains("'store' is listed twice") })
            #expect(messages.contains { $0.contains("must not be empty") || $0.contains("empty") })
        }
    }

    @Test("mid_stream defaults to continue; continue_with_instruction and prefill are read; bad values are errors")
    func midStreamSettings() throws {
        let yaml = """
            chains:
              plain:
                providers: [{ name: openai, model: gpt-4o, api_key: k }]
              instructed:
                mid_stream: continue_with_instruction
                providers:
                  - { name: vllm, model: qwen, prefill: false }
                  - { name: openai, model: llama, base_url: "http://gpu:8000/v1", prefill: true }
            """
        let file = try ConfigFile.parse(yaml, file: "m.yaml", environment: [:])
        #expect(file.chain(named: "plain")?.configuration.midStreamPolicy == .continue)
        #expect(file.chain(named: "plain")?.providers[0].prefill == nil)
        let instructed = try #require(file.chain(named: "instructed"))
        #expect(instructed.configuration.midStreamPolicy == .continueWithInstruction)
        #expect(instructed.providers.map(\.prefill) == [false, true])
        let bad = """
            chains:
              main:
                mid_stream: rescue
                providers: [{ name: openai, model: gpt-4o, api_key: k, prefill: sometimes }]
            """
        do {
            _ = try ConfigFile.parse(bad, file: "bad.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.contains { $0.hasPrefix("bad.yaml:3:") && $0.contains("continue_with_instruction") }, "\(messages)")
            #expect(messages.contains { $0.hasPrefix("bad.yaml:4:") && $0.contains("expected true or false, got 'sometimes'") }, "\(messages)")
        }
    }

    @Test("every problem is collected, in line order, with file, line and key path")
    func errors() throws {
        let yaml = """
            chains:
              default:
                providers:
                  - { name: azure, model: gpt-4o }
                  - { name: openai, model: gpt-4o }
                  - { name: openai, model: gpt-4o }
                  - { name: openai, model: "", base_url: "ftp://nope" }
            top_level_typo: 1
            """
        do {
            _ = try ConfigFile.parse(yaml, file: "bad.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let descriptions = error.errors.map(\.description)
            #expect(
                descriptions.contains {
                    $0.hasPrefix("bad.yaml:4: chains.default.providers[0]: provider kind 'azure' needs a base_url")
                }
            )
            #expect(
                descriptions.contains {
                    $0.hasPrefix("bad.yaml:6: chains.default.providers[2]: duplicate provider 'openai/gpt-4o'")
                }
            )
            #expect(descriptions.contains("bad.yaml:7: chains.default.providers[3].model: the model must not be empty"))
            #expect(
                descriptions.contains {
                    $0.hasPrefix("bad.yaml:7: chains.default.providers[3].base_url: invalid URL 'ftp://nope'")
                }
            )
            #expect(descriptions.contains { $0.hasPrefix("bad.yaml:8: top_level_typo: unknown key 'top_level_typo'") })
            #expect(error.errors.map { $0.line ?? 0 } == error.errors.map { $0.line ?? 0 }.sorted())
        }
    }

    @Test("the environment chain takes one provider per kind whose key is set, in a fixed order")
    func environmentChain() {
        let providers = EnvironmentProviders.providers(environment: [
            "GOOGLE_API_KEY": "g", "OPENAI_API_KEY": "o", "GROQ_API_KEY": "q", "ANTHROPIC_API_KEY": "",
        ])
        #expect(
            providers.map(\.name) == ["openai/gpt-4o-mini", "google/gemini-2.0-flash", "groq/llama-3.3-70b-versatile"]
        )
        #expect(providers.allSatisfy { $0.apiKey == nil })
        #expect(EnvironmentProviders.providers(environment: [:]).isEmpty)
    }

    @Test("locating the file: --config, then LLM_FALLBACK_CONFIG, then ./llm-fallback.yaml")
    func locate() throws {
        let empty = try CommandRunner.makeTemporaryDirectory()
        #expect(
            ConfigFile.locate(
                explicit: "a.yaml",
                environment: ["LLM_FALLBACK_CONFIG": "b.yaml"],
                currentDirectory: empty.path
            ) == "a.yaml"
        )
        #expect(
            ConfigFile.locate(
                explicit: nil,
                environment: ["LLM_FALLBACK_CONFIG": "b.yaml"],
                currentDirectory: empty.path
            ) == "b.yaml"
        )
        #expect(ConfigFile.locate(explicit: nil, environment: [:], currentDirectory: empty.path) == nil)
        try Data("chains: {}".utf8).write(to: empty.appendingPathComponent("llm-fallback.yaml"))
        #expect(ConfigFile.locate(explicit: nil, environment: [:], currentDirectory: empty.path) == "llm-fallback.yaml")
    }
}
