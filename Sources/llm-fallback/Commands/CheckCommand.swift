import ArgumentParser
import Foundation
import LLMFallback

/// `llm-fallback check`: a tiny request to every configured provider, each on its own.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Send a tiny request to every configured provider and report which ones answer.",
        discussion: """
            Each provider is asked alone ("Reply with OK", at most 5 tokens), without retries or failover, all \
            at once. The table shows, per chain and provider, whether it answered, how fast, and the class of \
            error when it did not (rate_limited, authentication, timeout, ...).

            Exit status: 0 when every chain has at least one working provider; 1 when a chain has none; 2 for a \
            usage or configuration error.

            Example:
              llm-fallback check --config llm-fallback.yaml
            """
    )

    @Option(help: "Check only this chain (default: every chain of the configuration file).")
    var chain: String?

    @Option(help: ArgumentHelp("Time allowed for each provider, e.g. 20s.", valueName: "duration"))
    var timeout: String = "20s"

    @Flag(help: "Print the results as JSON.")
    var json = false

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        guard let limit = DurationText.parse(timeout), limit > .zero else {
            throw ValidationError("--timeout: invalid duration '\(timeout)' (expected e.g. 30s, 250ms)")
        }
    }

    /// One provider's outcome.
    struct Result: Sendable {
        var chain: String
        var provider: String
        var reachable: Bool
        var latency: Duration?
        var error: ProviderError?
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let source = try ChainSource.load(configOptions, environment: environment)
        let chains = try chain.map { [try source.chain(named: $0)] } ?? source.chains
        let limit = DurationText.parse(timeout) ?? .seconds(20)

        var jobs: [(chain: ChainSettings, provider: Provider)] = []
        for settings in chains {
            for provider in settings.providers { jobs.append((settings, provider)) }
        }
        let results = await withTaskGroup(of: (Int, Result).self) { group in
            for (index, job) in jobs.enumerated() {
                group.addTask { (index, await Self.check(job.provider, in: job.chain, limit: limit)) }
            }
            var results = [Result?](repeating: nil, count: jobs.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }

        let broken = chains.map(\.name).filter { name in !results.contains { $0.chain == name && $0.reachable } }
        if json {
            printJSON(results, broken: broken)
        } else {
            printTable(results, chains: chains, broken: broken)
        }
        if !broken.isEmpty { throw ExitCode(1) }
    }

    /// Asks one provider alone: no retries, no breaker, no failover.
    static func check(_ provider: Provider, in settings: ChainSettings, limit: Duration) async -> Result {
        var single = provider
        single.maxRetries = 0
        single.timeout = min(single.timeout, limit)
        var configuration = settings.configuration
        configuration.circuitBreaker.isEnabled = false
        configuration.requestTimeout = limit
        let chain = FallbackChain([single], configuration: configuration, logger: CommandLogging.silent)
        let request = ChatRequest(messages: [.user("Reply with OK")], maxTokens: 5)
        do {
            let response = try await chain.chat(request, options: .init(allowFailover: false))
            return Result(chain: settings.name, provider: provider.name, reachable: true, latency: response.latency)
        } catch let failed as AllProvidersFailed {
            let error =
                failed.failures.last
                ?? ProviderError(
                    .timeout,
                    message: failed.deadlineExceeded
                        ? "no answer within \(DurationText.format(limit))" : failed.description
                )
            return Result(chain: settings.name, provider: provider.name, reachable: false, error: error)
        } catch let error as ProviderError {
            // The provider answered, but refused the request (a content filter, an invalid request): it is up.
            return Result(chain: settings.name, provider: provider.name, reachable: error.status != nil, error: error)
        } catch {
            return Result(
                chain: settings.name,
                provider: provider.name,
                reachable: false,
                error: ProviderError(.connection, message: "\(error)")
            )
        }
    }

    private func printTable(_ results: [Result], chains: [ChainSettings], broken: [String]) {
        let style = Style(enabled: Console.wantsANSI())
        var table = TextTable(headers: ["CHAIN", "PROVIDER", "REACHABLE", "LATENCY", "ERROR"])
        for result in results {
            var errorText = "-"
            if let error = result.error {
                errorText = error.kind.label
                if let status = error.status { errorText += " (HTTP \(status))" }
            }
            table.rows.append([
                result.chain,
                result.provider,
                result.reachable ? style.green("yes") : style.red("no"),
                result.latency.map(DurationText.format) ?? "-",
                errorText,
            ])
        }
        for line in table.render(style: style) { Console.outLine(line) }
        let failures = results.filter { $0.error != nil }
        if !failures.isEmpty {
            Console.outLine()
            for result in failures {
                guard let error = result.error else { continue }
                Console.outLine(
                    "\(result.chain) \(result.provider): \(error.message.isEmpty ? error.kind.description : String(error.message.prefix(300)))"
                )
            }
        }
        Console.outLine()
        for settings in chains {
            let working = results.filter { $0.chain == settings.name && $0.reachable }.count
            let verdict = broken.contains(settings.name) ? style.red("no working provider") : style.green("ok")
            Console.outLine(
                "chain \(settings.name): \(working) of \(settings.providers.count) providers working, \(verdict)"
            )
        }
    }

    private func printJSON(_ results: [Result], broken: [String]) {
        let entries: [JSONValue] = results.map { result in
            var object: JSONObject = [
                "chain": .string(result.chain),
                "provider": .string(result.provider),
                "reachable": .bool(result.reachable),
                "latency_ms": result.latency.map { .double(($0.milliseconds * 10).rounded() / 10) } ?? .null,
                "error_class": result.error.map { .string($0.kind.label) } ?? .null,
            ]
            if let error = result.error {
                object["status"] = error.status.map { .int($0) } ?? .null
                object["message"] = .string(error.message)
            }
            return .object(object)
        }
        let value: JSONValue = [
            "providers": .array(entries), "chains_without_working_provider": .array(broken.map { .string($0) }),
        ]
        Console.outLine(ResponseJSON.text(value))
    }
}
