import Foundation
import LLMFallback
import LLMFallbackTesting

/// The demo's script: five acts, each a few real requests through a real ``FallbackChain`` against the
/// ``MockLLMServer``, narrated from what the chain reports (its attempt trace and health report).
final class DemoStory {
    /// The simulated providers.
    let server: MockLLMServer
    /// Where the story is told.
    let screen: DemoScreen
    /// The pause between requests.
    let pause: Duration
    /// The screen's styling.
    var style: Style { screen.style }

    /// The first choice, speaking the OpenAI format.
    let primary: Provider
    /// The second choice, speaking the Anthropic format.
    let backup: Provider
    /// The third choice, speaking the Gemini format.
    let reserve: Provider
    /// How long an open breaker keeps requests away (short, for the demo).
    let recoveryTimeout = Duration.seconds(2)
    /// Consecutive failures that open a breaker.
    let failureThreshold = 3
    /// The `retry-after` the primary sends in act 4.
    let retryAfterSeconds = 1

    /// What happened, for the summary: requests sent, answered and failed.
    var requests = 0
    /// Requests answered.
    var answered = 0
    /// Requests no provider answered (none, when all goes to plan).
    var failedRequests = 0
    /// Requests answered after another provider failed.
    var failovers = 0
    /// Failed attempts of the primary.
    var primaryFailures = 0
    /// Times a breaker opened.
    var breakerOpenings = 0
    /// Times a breaker closed again after a probe.
    var recoveries = 0
    /// Requests that skipped a provider because its breaker was open.
    var skippedOpen = 0
    /// Requests that skipped a provider because of its `retry-after`.
    var skippedRetryAfter = 0
    /// Latency-routed requests that went to the faster provider.
    var latencyPicks = 0
    /// Latency-routed requests made once both providers were measured.
    var latencyDecisions = 0
    /// The last comparison latency routing made, such as `62ms vs 303ms`.
    var latencyComparison = ""
    /// Streams that failed over before their first token reached the user.
    var streamFailovers = 0
    /// Streams cut after content, ended as a visible interruption.
    var interruptions = 0
    /// Streams cut after content that the next provider finished.
    var rescues = 0
    /// Requests a hedge answered.
    var hedgeWins = 0

    /// Creates the story; the providers point at `server`.
    init(server: MockLLMServer, screen: DemoScreen, pause: Duration) {
        self.server = server
        self.screen = screen
        self.pause = pause
        // Explicit stand-in keys: a real key from the environment must never be sent, even to loopback.
        primary = Provider(
            "openai",
            model: "gpt-4o",
            apiKey: "demo-key",
            baseURL: server.openAIBaseURL,
            timeout: .seconds(5),
            maxRetries: 0
        )
        backup = Provider(
            "anthropic",
            model: "claude-3-5-haiku-latest",
            apiKey: "demo-key",
            baseURL: server.baseURL,
            timeout: .seconds(5),
            maxRetries: 0
        )
        reserve = Provider(
            "google",
            model: "gemini-2.0-flash",
            apiKey: "demo-key",
            baseURL: server.baseURL,
            timeout: .seconds(5),
            maxRetries: 0
        )
    }

    /// Plays the six acts and prints the summary.
    ///
    /// - Returns: Whether every request was answered.
    func run() async throws -> Bool {
        var configuration = FallbackChain.Configuration()
        configuration.strategy = .ordered
        configuration.circuitBreaker = CircuitBreaker.Configuration(
            failureThreshold: failureThreshold,
            recoveryTimeout: recoveryTimeout
        )
        configuration.requestTimeout = .seconds(10)
        configuration.retry = .immediate
        let chain = FallbackChain(
            [primary, backup, reserve],
            configuration: configuration,
            logger: CommandLogging.silent
        )

        intro()
        screen.tableTitle =
            "chain: ordered, breaker opens after \(failureThreshold) failures, recovery timeout \(DurationText.format(recoveryTimeout))"
        screen.health = { chain.healthReport() }
        screen.redraw()

        try await actNormalService(chain)
        try await actOutage(chain)
        try await actRecovery(chain)
        try await actRateLimit(chain)
        let latencyChain = try await actLatencyRouting()
        try await actStreams()
        summary(chain, latencyChain: latencyChain)
        return failedRequests == 0
    }

    // MARK: - The acts

    private func intro() {
        screen.emit(
            style.bold("llm-fallback demo") + ": three simulated providers on \(server.baseURL), no keys, no network"
        )
        screen.emit("  primary  \(primary.name)  (OpenAI wire format)")
        screen.emit("  backup   \(backup.name)  (Anthropic wire format)")
        screen.emit("  reserve  \(reserve.name)  (Gemini wire format)")
        screen.emit(
            "Every request below is a real HTTP request through a real FallbackChain; only the faults are scripted."
        )
    }

    private func act(_ number: Int, _ title: String) {
        screen.emit("")
        screen.emit(style.bold(style.cyan("[\(number)/6] \(title)")))
    }

    private func actNormalService(_ chain: FallbackChain) async throws {
        act(1, "Normal service")
        server.script(primary.model, .delayed(.milliseconds(80), .text("Paris is the capital of France.")))
        server.script(backup.model, .delayed(.milliseconds(150), .text("The capital of France is Paris.")))
        server.script(reserve.model, .delayed(.milliseconds(120), .text("Paris.")))
        for _ in 0..<3 { try await ask(chain) }
        screen.snapshot()
    }

    private func actOutage(_ chain: FallbackChain) async throws {
        act(2, "The primary goes down")
        server.script(primary.model, .status(500))
        // The backup is briefly overloaded too, so the first request needs the reserve.
        server.script(
            backup.model,
            [.status(529), .delayed(.milliseconds(150), .text("The capital of France is Paris."))]
        )
        screen.log(style.red("primary is down") + ": \(primary.name) now answers HTTP 500 (scripted outage)")
        for _ in 0..<5 { try await ask(chain) }
        screen.snapshot()
    }

    private func actRecovery(_ chain: FallbackChain) async throws {
        act(3, "Recovery")
        server.script(primary.model, .delayed(.milliseconds(80), .text("Paris is the capital of France.")))
        screen.log(
            "the primary is healthy again (scripted), but its open breaker keeps requests away until the recovery timeout"
        )
        if let health = chain.healthReport().first(where: { $0.name == primary.name }), health.state == .open,
            let reopensIn = health.reopensIn
        {
            try await wait(reopensIn + .milliseconds(20), label: "waiting for the recovery timeout") {
                chain.healthReport().first { $0.name == self.primary.name }?.reopensIn
            }
        }
        for _ in 0..<2 { try await ask(chain) }
        screen.snapshot()
    }

    private func actRateLimit(_ chain: FallbackChain) async throws {
        act(4, "A rate limit")
        server.script(
            primary.model,
            [
                .status(429, headers: ["retry-after": "\(retryAfterSeconds)"]),
                .delayed(.milliseconds(80), .text("Paris is the capital of France.")),
            ]
        )
        screen.log("the primary will answer the next request with HTTP 429 and retry-after: \(retryAfterSeconds)")
        for _ in 0..<3 { try await ask(chain) }
        if let remaining = chain.healthReport().first(where: { $0.name == primary.name })?.retryAfterRemaining {
            try await wait(remaining + .milliseconds(20), label: "waiting for the retry-after window") {
                chain.healthReport().first { $0.name == self.primary.name }?.retryAfterRemaining
            }
            screen.log("the retry-after window has passed: \(primary.name) may be asked again")
        }
        try await ask(chain)
        screen.snapshot()
    }

    private func actLatencyRouting() async throws -> FallbackChain {
        act(5, "Latency routing")
        let slow = backup
        let fast = reserve
        server.script(slow.model, .delayed(.milliseconds(300), .text("The capital of France is Paris.")))
        server.script(fast.model, .delayed(.milliseconds(60), .text("Paris.")))
        var configuration = FallbackChain.Configuration()
        configuration.strategy = .latency
        configuration.requestTimeout = .seconds(10)
        let chain = FallbackChain([slow, fast], configuration: configuration, logger: CommandLogging.silent)
        screen.tableTitle = "chain: latency routing"
        screen.health = { chain.healthReport() }
        screen.log(
            "a second chain with strategy .latency over two healthy providers: \(slow.name) (~300ms) listed first, \(fast.name) (~60ms)"
        )
        for _ in 0..<6 { try await ask(chain, latencyRouting: true) }
        screen.snapshot()
        return chain
    }

    private func actStreams() async throws {
        act(6, "Streams and hedging")
        var configuration = FallbackChain.Configuration()
        configuration.retry = .immediate
        configuration.requestTimeout = .seconds(10)
        configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(1), idle: .seconds(2))
        let chain = FallbackChain([primary, backup], configuration: configuration, logger: CommandLogging.silent)
        screen.tableTitle = "chain: streams, first token within 1s"
        screen.health = { chain.healthReport() }

        // A primary that takes the request and never sends a token: the stream fails over before anything shows.
        server.script(primary.model, .hang)
        server.script(backup.model, .chunkDelay(.milliseconds(40), .text("Paris is the capital of France.")))
        screen.log("a third chain streams its answers, with at most 1s to the first token; \(primary.name) will never send one")
        requests += 1
        var tag = style.bold("#\(requests)")
        var started = ContinuousClock.now
        var text = ""
        var answering = ""
        for try await chunk in chain.stream("Question \(requests): what is the capital of France?") {
            text += chunk.content
            if chunk.hasContent { answering = chunk.providerName }
        }
        answered += 1
        streamFailovers += 1
        screen.log(
            "\(tag) " + style.yellow("no first token from \(primary.name) within 1s")
                + ": failed over before anything reached the user; streamed by \(style.bold(answering)) in \(DurationText.format(ContinuousClock.now - started)): \"\(text)\""
        )
        try await pauseBetweenRequests()

        // A stream cut mid-answer: the user sees an interruption, never a silently truncated answer.
        server.script(primary.model, .cutStream(afterChunks: 3, text: "The capital of France is Paris, which is also its largest city."))
        screen.log("\(primary.name) is back, but its next stream will be cut after three chunks")
        // Not counted among the requests: it cannot be answered, by design of what it shows.
        tag = style.bold("(cut)")
        var partial = ""
        do {
            for try await chunk in chain.stream("Tell me about Paris.") { partial += chunk.content }
            screen.log("\(tag) " + style.red("the cut stream was passed off as complete"))
        } catch let interrupted as StreamInterrupted {
            interruptions += 1
            screen.log(
                "\(tag) " + style.red("stream interrupted after \(interrupted.deliveredChunks) chunks")
                    + " (\"\(partial)\"): the text already shown cannot be taken back, so the user gets an error, never a silently truncated answer"
            )
        }
        try await pauseBetweenRequests()

        // The same cut under mid_stream: continue (what `llm-fallback serve` does by default): the next provider
        // that takes a prefill is handed the delivered text and finishes the answer; the user sees one answer.
        let sentence = "The capital of France is Paris, which is also its largest city."
        server.script(primary.model, .cutStream(afterChunks: 3, text: sentence))
        server.script(backup.model, .chunkDelay(.milliseconds(40), .text(" France is Paris, which is also its largest city.")))
        var rescuing = configuration
        rescuing.midStreamPolicy = .continue
        let rescuer = FallbackChain([primary, backup], configuration: rescuing, logger: CommandLogging.silent)
        screen.log("the same cut with mid_stream: continue; \(backup.name) takes an assistant prefill")
        requests += 1
        tag = style.bold("#\(requests)")
        var joined = ""
        var producers: [String] = []
        for try await chunk in rescuer.stream("Question \(requests): tell me about Paris.") {
            joined += chunk.content
            if !chunk.producedBy.isEmpty { producers = chunk.producedBy }
        }
        answered += 1
        rescues += 1
        screen.log(
            "\(tag) " + style.green("rescued mid-stream")
                + ": \(primary.name) was cut after three chunks; \(producers.last ?? backup.name) was asked to go on from exactly there, and the user got one answer: \"\(joined)\""
        )
        try await pauseBetweenRequests()

        // Hedging: a slow first provider is asked, then the next one too; the first answer wins.
        server.script(primary.model, .delayed(.milliseconds(1_500), .text("Paris, eventually.")))
        server.script(backup.model, .delayed(.milliseconds(100), .text("Paris.")))
        var hedgedConfiguration = configuration
        hedgedConfiguration.hedging = .after(.milliseconds(300))
        let hedged = FallbackChain([primary, backup], configuration: hedgedConfiguration, logger: CommandLogging.silent)
        screen.log("a chain with hedging after 300ms; \(primary.name) now takes 1.5s to answer")
        requests += 1
        tag = style.bold("#\(requests)")
        started = ContinuousClock.now
        let response = try await hedged.chat("Question \(requests): what is the capital of France?", maxTokens: 50)
        answered += 1
        if response.providerName != primary.name { hedgeWins += 1 }
        screen.log(
            "\(tag) " + style.green("hedging")
                + ": \(primary.name) had not answered within 300ms, so \(response.providerName) was asked too; answered by \(style.bold(response.providerName)) in \(DurationText.format(ContinuousClock.now - started)), the slow request cancelled"
        )
        try await pauseBetweenRequests()
        screen.snapshot()
    }

    // MARK: - One request, narrated

    /// Sends one request and narrates what the chain did, from its trace and the health before and after.
    private func ask(_ chain: FallbackChain, latencyRouting: Bool = false) async throws {
        requests += 1
        let number = requests
        let tag = style.bold("#\(number)")
        let before = chain.healthReport()
        let response: ChatResponse
        do {
            response = try await chain.chat("Question \(number): what is the capital of France?", maxTokens: 50)
        } catch let failed as AllProvidersFailed {
            failedRequests += 1
            screen.log("\(tag) " + style.red("no answer: \(failed)"))
            try await pauseBetweenRequests()
            return
        }
        answered += 1
        let after = chain.healthReport()
        let tried = response.trace.map(\.provider)
        let answering = response.providerName

        if latencyRouting {
            narrateLatency(response, tag: tag, before: before, after: after)
        } else {
            // Providers ahead of the one that answered, but never tried: skipped by their breaker or Retry-After.
            if let answeringIndex = before.firstIndex(where: { $0.name == answering }) {
                for health in before[..<answeringIndex] where !tried.contains(health.name) {
                    if health.state == .open {
                        skippedOpen += 1
                        let probeIn = health.reopensIn.map { ", probe in \(DemoScreen.seconds($0))" } ?? ""
                        screen.log("\(tag) skipped \(health.name): circuit open\(probeIn)")
                    } else if let remaining = health.retryAfterRemaining {
                        skippedRetryAfter += 1
                        screen.log(
                            "\(tag) skipped \(health.name): honouring retry-after (\(DemoScreen.seconds(remaining)) left)"
                        )
                    } else {
                        screen.log("\(tag) skipped \(health.name)")
                    }
                }
            }
            for (index, record) in response.trace.enumerated() {
                let wasOpen = before.first { $0.name == record.provider }?.state == .open
                let isFirstTry = !response.trace[..<index].contains { $0.provider == record.provider }
                if wasOpen && isFirstTry {
                    screen.log(
                        "\(tag) " + style.yellow("half-open probe")
                            + ": the recovery timeout has passed, so one request may try \(record.provider)"
                    )
                }
                guard case .failure(let kind) = record.outcome else { continue }
                if record.provider == primary.name { primaryFailures += 1 }
                let status = record.status.map { " (HTTP \($0))" } ?? ""
                if kind == .rateLimited {
                    let retryAfter =
                        after.first { $0.name == record.provider }?.lastError.flatMap(Self.retryAfterText)
                        ?? "\(retryAfterSeconds)s"
                    screen.log(
                        "\(tag) " + style.yellow("rate limited: retry after \(retryAfter)")
                            + " (\(record.provider) answered HTTP 429)"
                    )
                } else {
                    screen.log("\(tag) \(record.provider) failed: \(kind)\(status)")
                }
                let opened =
                    before.first { $0.name == record.provider }?.state != .open
                    && after.first { $0.name == record.provider }?.state == .open
                let isLastTry = !response.trace[(index + 1)...].contains { $0.provider == record.provider }
                if opened && isLastTry {
                    breakerOpenings += 1
                    screen.log(
                        "\(tag) " + style.red("circuit open")
                            + ": \(record.provider) failed \(failureThreshold) times in a row; requests skip it for \(DurationText.format(recoveryTimeout))"
                    )
                }
            }
            var path: [String] = []
            for name in tried where path.last != name { path.append(name) }
            if path.count > 1 {
                failovers += 1
                screen.log("\(tag) " + style.yellow("failover: " + path.joined(separator: " -> ")))
            }
            for health in after {
                let was = before.first { $0.name == health.name }?.state
                if was != nil && was != .closed && health.state == .closed {
                    recoveries += 1
                    screen.log(
                        "\(tag) " + style.green("recovered")
                            + ": \(health.name) answered the probe; its circuit is closed again"
                    )
                }
            }
        }
        var line = "\(tag) answered by \(style.bold(answering)) in \(DurationText.format(response.latency))"
        if response.attempts > 1 { line += " after \(response.attempts) attempts" }
        if number == 1 { line += ": \"\(response.content)\"" }
        screen.log(line)
        try await pauseBetweenRequests()
    }

    private func narrateLatency(
        _ response: ChatResponse,
        tag: String,
        before: [ProviderHealth],
        after: [ProviderHealth]
    ) {
        let answering = response.providerName
        guard let chosen = before.first(where: { $0.name == answering }) else { return }
        if chosen.latency == nil {
            screen.log("\(tag) measuring \(answering): no latency sample yet, so it is tried")
            return
        }
        let others = before.filter { $0.name != answering }
        guard let other = others.first, let otherLatency = other.latency, let chosenLatency = chosen.latency else {
            return
        }
        latencyDecisions += 1
        let isFaster = chosenLatency <= otherLatency
        if isFaster { latencyPicks += 1 }
        latencyComparison = "\(Self.ms(chosenLatency)) vs \(Self.ms(otherLatency))"
        screen.log(
            "\(tag) " + style.green("latency routing picked \(answering)")
                + " (\(Self.ms(chosenLatency)) average) over \(other.name) (\(Self.ms(otherLatency)))"
        )
    }

    // MARK: - Waiting

    private func pauseBetweenRequests() async throws {
        screen.redraw()
        if pause > .zero { try await Task.sleep(for: pause) }
    }

    /// Waits `duration`, showing a countdown on a terminal and one line otherwise.
    private func wait(_ duration: Duration, label: String, remaining: () -> Duration?) async throws {
        let deadline = ContinuousClock.now + duration
        guard screen.live else {
            screen.log("\(label) (\(DemoScreen.seconds(duration)))")
            try await Task.sleep(until: deadline, clock: .continuous)
            return
        }
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            screen.status = "\(label): \(DemoScreen.seconds(left))"
            screen.redraw()
            try await Task.sleep(for: min(.milliseconds(100), left))
        }
        screen.status = nil
        screen.redraw()
    }

    // MARK: - Summary

    private func summary(_ chain: FallbackChain, latencyChain: FallbackChain) {
        screen.finishLiveRegion()
        let elapsed = ContinuousClock.now - screen.started
        screen.emit("")
        screen.emit(style.bold(style.cyan("Summary")))
        let rate = requests == 0 ? 0 : Int((Double(answered) / Double(requests) * 100).rounded())
        screen.emit(
            "  requests:         \(requests) sent, \(answered) answered (\(rate)%), \(failedRequests) failed, in \(DemoScreen.seconds(elapsed))"
        )
        screen.emit("  failovers:        \(failovers) requests were answered after another provider failed")
        screen.emit(
            "  circuit breaker:  opened \(breakerOpenings) time(s), \(skippedOpen) request(s) skipped the open provider, recovered \(recoveries) time(s) via a half-open probe"
        )
        screen.emit(
            "  rate limit:       retry-after \(retryAfterSeconds)s honoured, \(skippedRetryAfter) request(s) skipped the provider until the window passed"
        )
        screen.emit(
            "  latency routing:  picked the faster provider \(latencyPicks) of \(latencyDecisions) times once both were measured (\(latencyComparison))"
        )
        screen.emit(
            "  streams:          \(streamFailovers) failed over before the first token, \(interruptions) cut stream(s) ended as a visible interruption, \(rescues) finished by the next provider (mid_stream: continue); hedging answered \(hedgeWins) slow request(s) early"
        )
        screen.emit("")
        screen.emit(style.bold("Final health, failover chain:"))
        for line in tableLines(chain.healthReport()) { screen.emit("  " + line) }
        screen.emit(style.bold("Final health, latency chain:"))
        for line in tableLines(latencyChain.healthReport()) { screen.emit("  " + line) }
        screen.emit("")
        if failedRequests == 0 {
            screen.emit(
                style.green("Every request got an answer, although the primary failed \(primaryFailures) times.")
            )
        } else {
            screen.emit(style.red("\(failedRequests) request(s) got no answer."))
        }
        screen.emit(
            "Next: `llm-fallback chat \"Hello\"` with OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY set, or a config file (see llm-fallback.example.yaml)."
        )
    }

    private func tableLines(_ health: [ProviderHealth]) -> [String] {
        let saved = screen.health
        let savedTitle = screen.tableTitle
        screen.health = { health }
        screen.tableTitle = ""
        defer {
            screen.health = saved
            screen.tableTitle = savedTitle
        }
        return screen.tableLines()
    }

    private static func ms(_ duration: Duration) -> String {
        String(format: "%.0fms", duration.milliseconds)
    }

    /// `1s` from an error description such as `openai/gpt-4o: rate limited (429), retry after 1s: ...`.
    static func retryAfterText(_ description: String) -> String? {
        guard let range = description.range(of: "retry after ") else { return nil }
        let value = description[range.upperBound...].prefix { !$0.isWhitespace && $0 != ":" && $0 != "," }
        return value.isEmpty ? nil : String(value)
    }
}
