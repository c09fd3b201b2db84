import ArgumentParser
import Foundation

/// The `llm-fallback` command: chat through a fallback chain, check providers, validate the configuration file,
/// and a keyless demo of failover.
@main
struct LLMFallbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm-fallback",
        abstract:
            "Keep LLM apps answering: fail over between OpenAI, Anthropic, Gemini and OpenAI-compatible providers.",
        discussion: """
            Start with `llm-fallback demo`: it needs no keys and no network.

            Configuration: YAML, found via --config, then LLM_FALLBACK_CONFIG, then ./llm-fallback.yaml \
            (see llm-fallback.example.yaml). Without a file, `chat` and `check` build a chain from the API keys in \
            the environment.

            Exit status: 0 success, 1 every provider failed, 2 usage or configuration error.
            """,
        version: "0.1.0",
        subcommands: [DemoCommand.self, ChatCommand.self, CheckCommand.self, ConfigCommand.self, ServeCommand.self]
    )

    /// Runs the command; usage errors exit with status 2 (rather than ArgumentParser's 64), as documented.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                if code == .success {
                    Console.outLine(message)
                } else {
                    Console.errLine(message)
                }
            }
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
