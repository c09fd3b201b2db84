import ArgumentParser
import Foundation
import LLMFallback

/// `llm-fallback config`: work with the configuration file.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration file.",
        subcommands: [ValidateCommand.self]
    )
}

/// `llm-fallback config validate`: loads the file and reports every problem with its line and key.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the configuration file and report every problem with its line and key.",
        discussion: """
            Variables (${VAR}) are expanded from the environment, so run it where the command will run. \
            Exit status: 0 when the file is valid, 2 when it has problems (each printed on standard error as \
            FILE:LINE: KEY: MESSAGE).

            Example:
              llm-fallback config validate --config llm-fallback.yaml
            """
    )

    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let file = try ChainSource.loadFile(configOptions, environment: environment, required: true) else {
            throw ExitCode(2)
        }
        for warning in file.warnings {
            Console.errLine("warning: \(warning)")
        }
        Console.outLine("\(file.path): valid")
        for chain in file.chains {
            let configuration = chain.configuration
            var details = ["\(configuration.strategy)"]
            if configuration.circuitBreaker.isEnabled {
                details.append(
                    "breaker opens after \(configuration.circuitBreaker.failureThreshold) failures, "
                        + "probes after \(DurationText.format(configuration.circuitBreaker.recoveryTimeout))"
                )
            } else {
                details.append("no breaker")
            }
            if let timeout = configuration.requestTimeout {
                details.append("request timeout \(DurationText.format(timeout))")
            }
            Console.outLine("  chain \(chain.name) (\(details.joined(separator: "; "))):")
            for provider in chain.providers {
                var line = "    - \(provider.name)"
                if provider.name != "\(provider.kind)/\(provider.model)" {
                    line += " [\(provider.kind) \(provider.model)]"
                }
                if let baseURL = provider.baseURL { line += " at \(baseURL)" }
                if provider.apiKey != nil {
                    line += ", key set"
                } else if let kind = ProviderKind.named(provider.kind), kind.requiresAPIKey,
                    !kind.apiKeyVariables.isEmpty
                {
                    line += ", key from \(kind.apiKeyVariables.joined(separator: " or "))"
                }
                Console.outLine(line)
            }
        }
        if let server = file.server {
            Console.outLine("  server: \(server)")
        }
    }
}
