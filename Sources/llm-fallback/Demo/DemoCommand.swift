import ArgumentParser
import Foundation
import LLMFallbackTesting

/// `llm-fallback demo`: the whole failover story against simulated providers, with no keys and no network.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch failover work, with no keys and no network (about 15 seconds).",
        discussion: """
            Starts three simulated providers on 127.0.0.1 (MockLLMServer, speaking the OpenAI, Anthropic and \
            Gemini wire formats) and sends real requests through a real FallbackChain while scripting faults:

              1. normal service from the primary (OpenAI format)
              2. the primary goes down: failover to the backup (Anthropic format) and the reserve (Gemini format),
                 then its circuit breaker opens and requests skip it
              3. after the recovery timeout, a half-open probe: the primary recovers
              4. a rate limit with retry-after: the provider is skipped until the window passes
              5. latency routing picks the faster of two healthy providers

            On a terminal a live table shows each provider's breaker state, latency and requests served; \
            otherwise plain lines are printed. Exit status 0 when every request was answered.
            """
    )

    @Flag(help: "Plain lines even on a terminal: no colour, no live table.")
    var plain = false

    @Option(
        help: ArgumentHelp(
            "Pause between requests, so the story can be followed, e.g. 300ms; 0 for none. Default: 500ms on a terminal, 300ms otherwise.",
            valueName: "duration"
        )
    )
    var pause: String?

    func validate() throws {
        if let pause, DurationText.parse(pause) == nil {
            throw ValidationError("--pause: invalid duration '\(pause)' (expected e.g. 300ms, 0)")
        }
    }

    func run() async throws {
        let server = try await MockLLMServer.start()
        let screen = DemoScreen(live: !plain && Console.wantsANSI())
        let defaultPause: Duration = screen.live ? .milliseconds(500) : .milliseconds(300)
        let story = DemoStory(server: server, screen: screen, pause: pause.flatMap(DurationText.parse) ?? defaultPause)
        let allAnswered: Bool
        do {
            allAnswered = try await story.run()
        } catch {
            screen.finishLiveRegion()
            try? await server.shutdown()
            throw error
        }
        try? await server.shutdown()
        if !allAnswered { throw ExitCode(1) }
    }
}
