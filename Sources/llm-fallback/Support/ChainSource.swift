import ArgumentParser
import Foundation
import LLMFallback
import Logging

/// `--config`: where the configuration file is.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The configuration file. Default: the file named by LLM_FALLBACK_CONFIG, else ./llm-fallback.yaml when it exists.",
            valueName: "file"
        )
    )
    var config: String?
}

/// `--verbose`: attempts and failovers on standard error.
struct VerboseOptions: ParsableArguments {
    @Flag(name: [.short, .long], help: "Show each attempt, failover and breaker change on standard error.")
    var verbose = false
}

/// Where a command's chains come from: the configuration file, or (without one) the keys in the environment.
struct ChainSource {
    /// The configuration file, when one was found.
    var file: ConfigFile?
    /// The chains available.
    var chains: [ChainSettings]

    /// What the chains were built from, for messages: the file's path or `the environment`.
    var origin: String { file?.path ?? "the environment" }

    /// Loads the configuration file, printing every problem and exiting with status 2 when it has any.
    ///
    /// - Parameters:
    ///   - options: `--config`.
    ///   - environment: The process environment (variables and `LLM_FALLBACK_CONFIG`).
    ///   - required: Whether a missing file is an error; otherwise `nil` is returned.
    /// - Throws: `ExitCode(2)` after printing the problems.
    static func loadFile(_ options: ConfigOptions, environment: [String: String], required: Bool = false) throws
        -> ConfigFile?
    {
        guard let path = ConfigFile.locate(explicit: options.config, environment: environment) else {
            if required {
                Console.errLine(
                    "error: no configuration file: pass --config FILE, set \(ConfigFile.environmentVariable), or create ./\(ConfigFile.defaultFileName)"
                )
                throw ExitCode(2)
            }
            return nil
        }
        do {
            return try ConfigFile.load(path: path, environment: environment)
        } catch {
            for problem in error.errors { Console.errLine("error: \(problem)") }
            let count = error.errors.count
            Console.errLine("\(path): \(count) problem\(count == 1 ? "" : "s") found")
            throw ExitCode(2)
        }
    }

    /// The chains of the configuration file, or one chain built from the keys in the environment.
    ///
    /// - Throws: `ExitCode(2)` (after a message) for a bad file, or when there is neither a file nor a key.
    static func load(_ options: ConfigOptions, environment: [String: String]) throws -> ChainSource {
        if let file = try loadFile(options, environment: environment) {
            return ChainSource(file: file, chains: file.chains)
        }
        let providers = EnvironmentProviders.providers(environment: environment)
        guard !providers.isEmpty else {
            Console.errLine(
                """
                error: no providers configured.
                  No configuration file was found (--config FILE, \(ConfigFile.environmentVariable), or ./\(ConfigFile.defaultFileName)),
                  and no API key is set in the environment (\(EnvironmentProviders.variablesHint)).
                  Set one, e.g. `export OPENAI_API_KEY=...`, or write a configuration file (see llm-fallback.example.yaml).
                  To see failover without any key, run `llm-fallback demo`.
                """
            )
            throw ExitCode(2)
        }
        var configuration = FallbackChain.Configuration()
        configuration.requestTimeout = .seconds(120)
        let chain = ChainSettings(
            name: EnvironmentProviders.chainName,
            line: nil,
            configuration: configuration,
            providers: providers
        )
        return ChainSource(file: nil, chains: [chain])
    }

    /// The chain called `name`; without a name, `default`, or the only chain there is.
    ///
    /// - Throws: `ExitCode(2)` (after a message) when there is no such chain.
    func chain(named name: String?) throws -> ChainSettings {
        if let name {
            if let chain = chains.first(where: { $0.name == name }) { return chain }
            guard file != nil else {
                Console.errLine(
                    "error: --chain \(name): chains are defined in a configuration file, and none was found (pass --config FILE)"
                )
                throw ExitCode(2)
            }
            Console.errLine(
                "error: no chain named '\(name)' in \(origin) (chains: \(chains.map(\.name).joined(separator: ", ")))"
            )
            throw ExitCode(2)
        }
        if let chain = chains.first(where: { $0.name == "default" }) { return chain }
        if chains.count == 1, let only = chains.first { return only }
        Console.errLine(
            "error: \(origin) has no chain named 'default'; pick one with --chain (chains: \(chains.map(\.name).joined(separator: ", ")))"
        )
        throw ExitCode(2)
    }
}

/// The chain built from API keys in the environment when there is no configuration file.
enum EnvironmentProviders {
    /// The name of that chain.
    static let chainName = "default"

    /// The model asked of each kind, in the order the kinds are tried.
    static let defaultModels: [(kind: String, model: String)] = [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("google", "gemini-2.0-flash"),
        ("groq", "llama-3.3-70b-versatile"),
        ("mistral", "mistral-small-latest"),
        ("deepseek", "deepseek-chat"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        ("openrouter", "openai/gpt-4o-mini"),
        ("xai", "grok-3-mini"),
        ("perplexity", "sonar"),
        ("cerebras", "llama3.1-8b"),
    ]

    /// The variables looked at, for messages.
    static var variablesHint: String {
        let variables = defaultModels.compactMap { ProviderKind.named($0.kind)?.apiKeyVariables }.flatMap { $0 }
        return variables.prefix(4).joined(separator: ", ") + ", ..."
    }

    /// One provider per kind whose key variable is set, in the order of ``defaultModels``. The key itself stays in
    /// the environment: the providers read it when they send.
    static func providers(environment: [String: String]) -> [Provider] {
        defaultModels.compactMap { entry in
            guard let kind = ProviderKind.named(entry.kind),
                kind.apiKeyVariables.contains(where: { !(environment[$0] ?? "").isEmpty })
            else { return nil }
            return Provider(entry.kind, model: entry.model)
        }
    }
}

extension ChainSettings {
    /// A chain from these settings.
    ///
    /// - Parameters:
    ///   - logger: Where the chain's attempts and failovers go.
    ///   - onSuccess: Called with each answer.
    func makeChain(logger: Logger, onSuccess: FallbackChain.SuccessHandler? = nil) -> FallbackChain {
        FallbackChain(providers, configuration: configuration, logger: logger, onSuccess: onSuccess)
    }
}
