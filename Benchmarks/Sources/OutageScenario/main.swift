// Issue 13: how much traffic a chain sends upstream while every provider is down, and how soon it uses a provider
// again once it is back.
//
// Rows (each with models of its own on one MockLLMServer, so its server counts are its own):
//   1  503, 1 provider          the chain's only provider answers 503 for the whole run
//   2  503, 3 providers         all three answer 503 for the whole run
//   3  hang, 1 provider         the only provider accepts the request and never answers (attempt timeout)
//   4  hang, 3 providers        all three hang
//   5  recovery, 1 provider     the only provider answers 503 for `--down` seconds, then answers normally
//   6  recovery, primary of 3   the first of three answers 503 for `--down` seconds, then normally; the others
//                               answer normally throughout
// For each row `--concurrency` client loops (64) send `chain.chat` back to back for `--duration` seconds (20) of real
// time; each loop yields (`Task.yield()`) between two requests, so that requests failing fast, which need no I/O,
// cannot keep the cooperative threads from the rest of the work. The chain is a fresh one per row, with the
// library's default configuration (breaker, retry policy and budget, failure policy, default transport; no event
// hook: it runs late and drops events when flooded, so no figure comes from it); the providers are
// `Provider("openai", ...)` with the default `maxRetries` (2) and `timeout: --attempt-timeout` (2 s), which only the
// hang rows reach.
//
// Figures, per outage row:
//   client requests        `chain.chat` calls that ended during the run
//   upstream               requests the mock server received for the row's models (its own count)
//   steady upstream        upstream requests from the moment a client request first found every provider of the
//                          chain closed to traffic (all skipped as open) to the end; the server's count is sampled
//                          every 100 ms, and the steady state starts at the first sample after that moment
//   steady upstream / s    the same, per second
//   per recovery period    steady upstream / s × recoveryTimeout: the upstream requests in a period of the
//                          configured (first, shortest) recovery timeout; the goal is at most halfOpenMaxProbes.
//                          Later periods are longer (they double per failed probe, in the new engine), so this is
//                          the most favourable way to count
//   fail fast              client requests that ended in AllProvidersFailed with allCircuitsOpen (no attempt)
//   attempted              AllProvidersFailed after at least one attempt
//   other                  anything else (AllProvidersFailed with only Retry-After skips, other errors)
//   p50 to fail            the median time a failed client request took (all failures; and attempted ones)
// Per recovery row: when the first answer from the recovered provider came, counted from the moment the server
// was told to answer again; answers and failures before and after that moment.
//
// The server runs in a child process (this binary with `--serve`), so its CPU and event loops stay out of the
// client's figures; the parent talks to it over the child's standard input and output:
//   child → parent  `PORT <port>` once listening
//   parent → child  `COUNT <model> <model> ...`, answered `COUNTS <n> <n> ... <abandoned> <connections>`
//   parent → child  `HEAL <model>`: the model answers normally from now on; answered `HEALED <requests so far>`
//   parent closes the child's standard input → the child shuts the server down and exits.
//
// Usage: OutageScenario [--duration 20] [--concurrency 64] [--attempt-timeout 2] [--down 6] [--only 1,2,...]
//                       [--engine LABEL] [--json PATH]
//        OutageScenario --compare OLD.json NEW.json      (prints the ratios new/old of two runs' figures)
//
// The same source builds against the engine before the redesign (c2cb4fa) and after; it names no API that only
// one of them has (configurations are printed by reflection).
import Foundation
import LLMFallback
import LLMFallbackTesting
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Options

struct Options: Sendable {
    var duration = 20.0
    var concurrency = 64
    var attemptTimeout = 2.0
    var down = 6.0
    var only: Set<Int>? = nil
    var engine = "this build"
    var json: String? = nil
    var compare: (old: String, new: String)? = nil
    var serve = false

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        func int(_ text: String) -> Int {
            guard let value = Int(text), value >= 0 else { fail("not a non-negative integer: \(text)") }
            return value
        }
        func seconds(_ text: String) -> Double {
            guard let value = Double(text), value > 0, value < 3600 else { fail("not a number of seconds: \(text)") }
            return value
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--duration": options.duration = seconds(value())
            case "--concurrency": options.concurrency = max(1, int(value()))
            case "--attempt-timeout": options.attemptTimeout = seconds(value())
            case "--down": options.down = seconds(value())
            case "--only": options.only = Set(value().split(separator: ",").map { int(String($0)) })
            case "--engine": options.engine = value()
            case "--json": options.json = value()
            case "--compare":
                let old = value()
                options.compare = (old, value())
            case "--serve": options.serve = true
            case "-h", "--help":
                print("usage: OutageScenario [--duration S] [--concurrency N] [--attempt-timeout S] [--down S] "
                    + "[--only 1,2,...] [--engine LABEL] [--json PATH]\n"
                    + "       OutageScenario --compare OLD.json NEW.json")
                exit(0)
            default: fail("unknown argument \(argument)")
            }
            index += 1
        }
        return options
    }
}

func fail(_ message: String) -> Never {
    writeLine("OutageScenario: \(message)", to: 2)
    exit(1)
}

/// Writes `text` and a line feed to the file descriptor `fd`, unbuffered.
func writeLine(_ text: String, to fd: Int32) {
    let bytes = Array((text + "\n").utf8)
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}

// MARK: - Rows

enum Fault: String, Sendable, Codable {
    case status503 = "503"
    case hang
}

struct Row: Sendable {
    var number: Int
    var label: String
    var providers: Int
    var fault: Fault
    /// Whether the faulty providers heal after `--down` seconds (only the first one is faulty then).
    var recovery: Bool

    var models: [String] { ["a", "b", "c"].prefix(providers).map { "os\(number)-\($0)" } }
    /// The models that fail (all of them, or the first one in a recovery row of several providers).
    var faulty: [String] { recovery ? [models[0]] : models }
}

let rows = [
    Row(number: 1, label: "503, 1 provider", providers: 1, fault: .status503, recovery: false),
    Row(number: 2, label: "503, 3 providers", providers: 3, fault: .status503, recovery: false),
    Row(number: 3, label: "hang, 1 provider", providers: 1, fault: .hang, recovery: false),
    Row(number: 4, label: "hang, 3 providers", providers: 3, fault: .hang, recovery: false),
    Row(number: 5, label: "recovery, 1 provider", providers: 1, fault: .status503, recovery: true),
    Row(number: 6, label: "recovery, primary of 3", providers: 3, fault: .status503, recovery: true),
]

let answerText = "The capital of France is Paris."

func behaviour(_ fault: Fault) -> MockBehavior {
    switch fault {
    case .status503: return .status(503)
    case .hang: return .hang
    }
}

// MARK: - Server mode

func serve() async throws {
    let server = try await MockLLMServer.start(host: "127.0.0.1", port: 0)
    for row in rows {
        for model in row.models {
            server.script(model, row.faulty.contains(model) ? behaviour(row.fault) : .text(answerText))
        }
    }
    writeLine("PORT \(server.port)", to: 1)
    alarm(1800)  // Never outlive a parent that died without closing the pipe.
    // Requests per model, brought up to date on each COUNT from the requests recorded since the last one.
    var counts: [String: Int] = [:]
    var counted = 0
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        switch words.first {
        case "COUNT":
            let all = server.requests
            for request in all[counted...] { counts[request.model, default: 0] += 1 }
            counted = all.count
            let reply = words.dropFirst().map { String(counts[$0] ?? 0) }
                + [String(server.abandonedRequests), String(server.connectionsAccepted)]
            writeLine("COUNTS " + reply.joined(separator: " "), to: 1)
        case "HEAL" where words.count == 2:
            server.script(words[1], .text(answerText))
            writeLine("HEALED \(server.requests(for: words[1]).count)", to: 1)
        default:
            writeLine("ERROR unknown command", to: 1)
        }
    }
    let summary = "mock server: \(server.requests.count) requests on \(server.connectionsAccepted) connections, "
        + "\(server.abandonedRequests) abandoned by the client"
    writeLine(summary, to: 2)
    try await server.shutdown()
}

// MARK: - The server process, seen from the client

/// The child process running the server, and the pipe protocol to it. One command at a time (a lock), from any task.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private(set) var port = 0

    init() throws {
        #if os(Linux)
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        #else
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        #endif
        process.arguments = ["--serve"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let first = readLine()
        guard let first, first.hasPrefix("PORT "), let port = Int(first.dropFirst(5)) else {
            throw ScenarioError("the server process did not report its port (got \(first ?? "end of file"))")
        }
        self.port = port
    }

    /// Reads one line of the child's standard output; `nil` at its end.
    private func readLine() -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count <= 0 { return nil }
            buffer += chunk[..<count]
        }
    }

    private func command(_ text: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        writeLine(text, to: input.fileHandleForWriting.fileDescriptor)
        return readLine()
    }

    /// The requests the server recorded for each model.
    func counts(_ models: [String]) throws -> [Int] {
        guard let line = command("COUNT " + models.joined(separator: " ")), line.hasPrefix("COUNTS ") else {
            throw ScenarioError("the server process stopped answering")
        }
        let numbers = line.dropFirst(7).split(separator: " ").compactMap { Int($0) }
        guard numbers.count == models.count + 2 else { throw ScenarioError("bad reply: \(line)") }
        return Array(numbers.prefix(models.count))
    }

    /// Makes `model` answer normally; returns the requests it had received until then.
    func heal(_ model: String) throws -> Int {
        guard let line = command("HEAL \(model)"), line.hasPrefix("HEALED "), let count = Int(line.dropFirst(7)) else {
            throw ScenarioError("the server process did not heal \(model)")
        }
        return count
    }

    /// Closes the child's standard input, which ends it, and waits.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Statistics

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Durations in logarithmic buckets 2% wide, from 1 µs: the median of millions of requests without keeping them.
struct Histogram: Sendable {
    static let base = 1.02
    private(set) var buckets = [Int](repeating: 0, count: 1200)
    private(set) var count = 0

    mutating func add(_ duration: Duration) {
        let microseconds = max(1, duration.seconds * 1e6)
        let bucket = min(buckets.count - 1, Int(log(microseconds) / log(Self.base)))
        buckets[bucket] += 1
        count += 1
    }

    mutating func merge(_ other: Histogram) {
        for index in buckets.indices { buckets[index] += other.buckets[index] }
        count += other.count
    }

    /// The `q` quantile in milliseconds (the geometric middle of its bucket); `nil` when empty.
    func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (index, n) in buckets.enumerated() {
            seen += n
            if seen >= rank { return pow(Self.base, Double(index) + 0.5) / 1000 }
        }
        return nil
    }
}

/// What one client loop saw.
struct LoopStats: Sendable {
    var requests = 0
    var failFast = 0
    var attempted = 0
    var otherSkipped = 0
    var other = 0
    var otherExample: String? = nil
    var failures = Histogram()
    var attemptedFailures = Histogram()
    // Recovery rows (times are offsets from the row's start).
    var successes = 0
    var successesAfterHeal = 0
    var primaryAfterHeal = 0
    var failuresAfterHeal = 0
    var firstPrimaryAfterHeal: Duration? = nil
    var primaryInLastQuarter = 0
    var successesInLastQuarter = 0

    mutating func merge(_ other: LoopStats) {
        requests += other.requests
        failFast += other.failFast
        attempted += other.attempted
        otherSkipped += other.otherSkipped
        self.other += other.other
        otherExample = otherExample ?? other.otherExample
        failures.merge(other.failures)
        attemptedFailures.merge(other.attemptedFailures)
        successes += other.successes
        successesAfterHeal += other.successesAfterHeal
        primaryAfterHeal += other.primaryAfterHeal
        failuresAfterHeal += other.failuresAfterHeal
        if let time = other.firstPrimaryAfterHeal {
            firstPrimaryAfterHeal = min(firstPrimaryAfterHeal ?? time, time)
        }
        primaryInLastQuarter += other.primaryInLastQuarter
        successesInLastQuarter += other.successesInLastQuarter
    }
}

/// A value shared between tasks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { value.withLock { body(&$0) } }
}

/// The server's count of a row's requests, sampled from a thread of its own while the row runs (times are offsets
/// from the row's start). The chain's event hook is not used for any figure: it runs its callbacks on a queue of its
/// own, later than the event, and drops the oldest when 10,000 wait, which millions of fail-fast requests' `skipped`
/// events do.
final class Sampler: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [(at: Duration, count: Int)] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(server: ServerProcess, models: [String], start: ContinuousClock.Instant, interval: Duration) {
        let thread = Thread { [self] in
            let clock = ContinuousClock()
            while true {
                let at = start.duration(to: clock.now)
                let count = (try? server.counts(models))?.reduce(0, +)
                let stop = lock.withLock { () -> Bool in
                    if let count { samples.append((at, count)) }
                    return stopped
                }
                if stop { break }
                Thread.sleep(forTimeInterval: interval.seconds)
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops sampling after one last sample; returns the samples.
    func stop() -> [(at: Duration, count: Int)] {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { samples }
    }
}

/// The figures of one row, as the JSON file keeps them.
struct RowResult: Codable, Sendable {
    var number: Int
    var label: String
    var providers: Int
    var fault: String
    var recovery: Bool
    var wallSeconds: Double
    var clientRequests: Int
    var upstream: Int
    var upstreamPerModel: [Int]
    /// Attempts the chain recorded (its health report), for comparison with the server's count.
    var chainAttempts: Int
    /// When a client request first found every provider of the chain closed to traffic (all skipped as open).
    var allOpenAtSeconds: Double?
    var steadySeconds: Double?
    var steadyUpstream: Int?
    var recoveryTimeoutSeconds: Double
    var halfOpenMaxProbes: Int
    var failFast: Int
    var attempted: Int
    var otherSkipped: Int
    var other: Int
    var otherExample: String?
    var p50FailMs: Double?
    var p50AttemptedFailMs: Double?
    var p90FailMs: Double?
    /// Upstream requests the server received in each second of the row.
    var upstreamPerSecond: [Int]
    var statesAtEnd: [String]
    var reopensInAtEnd: [Double?]
    // Recovery rows.
    var healedAtSeconds: Double?
    var upstreamBeforeHeal: Int?
    var successes: Int
    var successesAfterHeal: Int
    var primaryAfterHeal: Int
    var failuresAfterHeal: Int
    var firstPrimaryAfterHealSeconds: Double?
    var primaryInLastQuarter: Int
    var successesInLastQuarter: Int

    var upstreamPerClient: Double { Double(upstream) / Double(max(1, clientRequests)) }
    var steadyPerSecond: Double? {
        guard let steadySeconds, let steadyUpstream, steadySeconds > 0 else { return nil }
        return Double(steadyUpstream) / steadySeconds
    }
    var perRecoveryPeriod: Double? { steadyPerSecond.map { $0 * recoveryTimeoutSeconds } }
}

struct Healed: Sendable {
    var at: Duration
    var upstream: Int
}

struct RunFile: Codable {
    var engine: String
    var configuration: String
    var duration: Double
    var concurrency: Int
    var rows: [RowResult]
}

// MARK: - The measured run

let silentLogger = Logger(label: "outage-scenario", factory: { _ in SwiftLogNoOpLogHandler() })

func run(_ row: Row, options: Options, server: ServerProcess, baseURL: String) async throws -> RowResult {
    let providers = row.models.map {
        Provider(
            "openai", model: $0, apiKey: "outage-key-0123456789", baseURL: baseURL,
            timeout: .milliseconds(Int64(options.attemptTimeout * 1000))
        )
    }
    let names = Set(providers.map(\.name))
    let configuration = FallbackChain.Configuration()
    let clock = ContinuousClock()
    let chain = FallbackChain(providers, configuration: configuration, logger: silentLogger)
    let request = ChatRequest(messages: [.user("What is the capital of France?")], maxTokens: 16)
    let before = try server.counts(row.models)

    let start = clock.now
    let end = start + .milliseconds(Int64(options.duration * 1000))
    let healAt = Duration.milliseconds(Int64(options.down * 1000))
    let lastQuarter = Duration.milliseconds(Int64(options.duration * 750))
    let healed = Shared<Healed?>(nil)
    let allOpenAt = Shared<Duration?>(nil)
    let primary = providers[0].name
    let sampler = Sampler(server: server, models: row.models, start: start, interval: .milliseconds(100))

    let stats = try await withThrowingTaskGroup(of: LoopStats?.self) { group in
        if row.recovery {
            group.addTask {
                try await Task.sleep(until: start + healAt, clock: clock)
                let upstream = try server.heal(row.models[0])
                healed.withLock { $0 = Healed(at: start.duration(to: clock.now), upstream: upstream - before[0]) }
                return nil
            }
        }
        for _ in 0..<options.concurrency {
            group.addTask {
                var local = LoopStats()
                var sawAllOpen = false
                while clock.now < end {
                    let begun = clock.now
                    let healedAt = healed.withLock { $0?.at }
                    do {
                        let response = try await chain.chat(request)
                        let finished = start.duration(to: clock.now)
                        local.successes += 1
                        if finished >= lastQuarter {
                            local.successesInLastQuarter += 1
                            if response.providerName == primary { local.primaryInLastQuarter += 1 }
                        }
                        if response.providerName == primary, row.recovery {
                            // The recovered provider answered (it answered nothing but 503 before it was healed).
                            local.firstPrimaryAfterHeal = min(local.firstPrimaryAfterHeal ?? finished, finished)
                        }
                        if let healedAt, start + healedAt <= begun {
                            local.successesAfterHeal += 1
                            if response.providerName == primary { local.primaryAfterHeal += 1 }
                        }
                    } catch let error as AllProvidersFailed {
                        let took = begun.duration(to: clock.now)
                        local.failures.add(took)
                        if error.allCircuitsOpen {
                            local.failFast += 1
                        } else if !error.failures.isEmpty {
                            local.attempted += 1
                            local.attemptedFailures.add(took)
                        } else {
                            local.otherSkipped += 1
                            local.otherExample = local.otherExample ?? "\(error)"
                        }
                        if let healedAt, start + healedAt <= begun { local.failuresAfterHeal += 1 }
                        if !sawAllOpen, Set(error.skipped.filter { $0.reason == .circuitOpen }.map(\.provider)) == names {
                            // Every provider was closed to traffic when this request was admitted.
                            sawAllOpen = true
                            let at = start.duration(to: begun)
                            allOpenAt.withLock { $0 = min($0 ?? at, at) }
                        }
                    } catch {
                        local.failures.add(begun.duration(to: clock.now))
                        local.other += 1
                        local.otherExample = local.otherExample ?? "\(type(of: error)): \(error)"
                        if let healedAt, start + healedAt <= begun { local.failuresAfterHeal += 1 }
                    }
                    local.requests += 1
                    await Task.yield()
                }
                return local
            }
        }
        var total = LoopStats()
        for try await loop in group { if let loop { total.merge(loop) } }
        return total
    }
    let wall = start.duration(to: clock.now)
    try await Task.sleep(for: .milliseconds(300))  // Let the server's bookkeeping settle.
    let samples = sampler.stop()
    let after = try server.counts(row.models)
    let upstreamPerModel = zip(after, before).map { $0 - $1 }
    let baseline = before.reduce(0, +)

    // The steady state runs from the first sample at or after the moment every provider was found closed.
    var steadySeconds: Double? = nil
    var steadyUpstream: Int? = nil
    if !row.recovery, let allOpen = allOpenAt.withLock({ $0 }), let first = samples.first(where: { $0.at >= allOpen }) {
        steadySeconds = wall.seconds - first.at.seconds
        steadyUpstream = after.reduce(0, +) - first.count
    }
    var perSecond: [Int] = []
    var previous = baseline
    for second in 1...max(1, Int(wall.seconds.rounded(.up))) {
        let at = Duration.seconds(second)
        let count = samples.first(where: { $0.at >= at })?.count ?? after.reduce(0, +)
        perSecond.append(count - previous)
        previous = count
    }

    let breaker = configuration.circuitBreaker
    let report = chain.healthReport()
    let healedState = healed.withLock { $0 }
    return RowResult(
        number: row.number,
        label: row.label,
        providers: row.providers,
        fault: row.fault.rawValue,
        recovery: row.recovery,
        wallSeconds: wall.seconds,
        clientRequests: stats.requests,
        upstream: upstreamPerModel.reduce(0, +),
        upstreamPerModel: upstreamPerModel,
        chainAttempts: report.map(\.attempts).reduce(0, +),
        allOpenAtSeconds: allOpenAt.withLock { $0 }?.seconds,
        steadySeconds: steadySeconds,
        steadyUpstream: steadyUpstream,
        recoveryTimeoutSeconds: breaker.recoveryTimeout.seconds,
        halfOpenMaxProbes: breaker.halfOpenMaxProbes,
        failFast: stats.failFast,
        attempted: stats.attempted,
        otherSkipped: stats.otherSkipped,
        other: stats.other,
        otherExample: stats.otherExample,
        p50FailMs: stats.failures.quantile(0.5),
        p50AttemptedFailMs: stats.attemptedFailures.quantile(0.5),
        p90FailMs: stats.failures.quantile(0.9),
        upstreamPerSecond: perSecond,
        statesAtEnd: report.map { "\($0.state)" },
        reopensInAtEnd: report.map { $0.reopensIn?.seconds },
        healedAtSeconds: healedState?.at.seconds,
        upstreamBeforeHeal: healedState?.upstream,
        successes: stats.successes,
        successesAfterHeal: stats.successesAfterHeal,
        primaryAfterHeal: stats.primaryAfterHeal,
        failuresAfterHeal: stats.failuresAfterHeal,
        firstPrimaryAfterHealSeconds: both(stats.firstPrimaryAfterHeal, healedState?.at).map { ($0 - $1).seconds },
        primaryInLastQuarter: stats.primaryInLastQuarter,
        successesInLastQuarter: stats.successesInLastQuarter
    )
}

func both<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

// MARK: - Tables

func f(_ value: Double?, _ digits: Int = 1) -> String {
    guard let value, value.isFinite else { return "-" }
    return String(format: "%.\(digits)f", value)
}

func ratio(_ value: Double) -> String {
    if value >= 100 { return String(format: "%.0f", value) }
    if value >= 0.1 { return String(format: "%.2f", value) }
    if value >= 0.001 { return String(format: "%.4f", value) }
    return String(format: "%.1e", value)
}

func printTables(_ file: RunFile) {
    print("")
    print("### \(file.engine): \(Int(file.duration)) s per row, concurrency \(file.concurrency)")
    print("")
    let outage = file.rows.filter { !$0.recovery }
    if !outage.isEmpty {
        print("| # | outage | client requests | upstream | upstream / client request | steady upstream (s) "
            + "| steady upstream / s | per recovery period (goal ≤ halfOpenMaxProbes) | fail fast, all circuits open "
            + "| attempted | other | p50 to fail ms (attempted) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in outage {
            let steady = row.steadyUpstream.map { "\($0) (\(f(row.steadySeconds)) s)" } ?? "-"
            let perPeriod = row.perRecoveryPeriod.map {
                "\(f($0)) per \(f(row.recoveryTimeoutSeconds, 0)) s (≤ \(row.halfOpenMaxProbes))"
            } ?? "-"
            let cells = [
                "\(row.number)", row.label, "\(row.clientRequests)", "\(row.upstream)", ratio(row.upstreamPerClient),
                steady, f(row.steadyPerSecond), perPeriod, "\(row.failFast)", "\(row.attempted)", "\(row.other + row.otherSkipped)",
                "\(f(row.p50FailMs, 3)) (\(f(row.p50AttemptedFailMs, 1)))",
            ]
            print("| " + cells.joined(separator: " | ") + " |")
        }
    }
    let recovery = file.rows.filter(\.recovery)
    if !recovery.isEmpty {
        print("")
        print("| # | recovery | down for | first answer from it after recovery | answers from it / all answers "
            + "after recovery | last quarter of the run: from it / all | failures during / after the outage "
            + "| upstream to it while down |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for row in recovery {
            let first = row.firstPrimaryAfterHealSeconds.map { f($0, 2) + " s" }
                ?? "not within \(f(row.wallSeconds - (row.healedAtSeconds ?? 0))) s"
            let during = row.failFast + row.attempted + row.otherSkipped + row.other - row.failuresAfterHeal
            let cells = [
                "\(row.number)", row.label, f(row.healedAtSeconds, 1) + " s", first,
                "\(row.primaryAfterHeal) / \(row.successesAfterHeal)",
                "\(row.primaryInLastQuarter) / \(row.successesInLastQuarter)",
                "\(during) / \(row.failuresAfterHeal)", row.upstreamBeforeHeal.map(String.init) ?? "-",
            ]
            print("| " + cells.joined(separator: " | ") + " |")
        }
    }
    print("")
    for row in file.rows {
        var notes = "- \(row.number): \(f(row.wallSeconds)) s; server per model \(row.upstreamPerModel.map(String.init).joined(separator: "/"))"
            + ", attempts the chain recorded \(row.chainAttempts); every provider closed to traffic from "
            + (row.allOpenAtSeconds.map { f($0, 2) + " s" } ?? "-")
            + "; breakers at the end " + zip(row.statesAtEnd, row.reopensInAtEnd).map { state, reopens in
                state + (reopens.map { " (reopens in " + f($0) + " s)" } ?? "")
            }.joined(separator: ", ")
        if !row.recovery { notes += "; p90 to fail \(f(row.p90FailMs, 2)) ms" }
        if let example = row.otherExample { notes += "; other error e.g. \(example.prefix(160))" }
        print(notes)
        print("    upstream requests in each second: " + row.upstreamPerSecond.map(String.init).joined(separator: " "))
    }
}

func compare(old: RunFile, new: RunFile) {
    print("")
    print("### new / old (\(new.engine) / \(old.engine))")
    print("")
    print("| # | row | upstream / client request, old → new | ratio | steady upstream / s, old → new | ratio "
        + "| per recovery period, old → new | ratio | p50 to fail ms, old → new | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for newRow in new.rows where !newRow.recovery {
        guard let oldRow = old.rows.first(where: { $0.number == newRow.number }) else { continue }
        var cells: [String] = ["\(newRow.number)", newRow.label]
        cells.append("\(ratio(oldRow.upstreamPerClient)) → \(ratio(newRow.upstreamPerClient))")
        cells.append(ratio(newRow.upstreamPerClient / oldRow.upstreamPerClient))
        if let (old, new) = both(oldRow.steadyPerSecond, newRow.steadyPerSecond) {
            cells.append("\(f(old)) → \(f(new))")
            cells.append(ratio(new / old))
        } else {
            cells += ["-", "-"]
        }
        if let (old, new) = both(oldRow.perRecoveryPeriod, newRow.perRecoveryPeriod) {
            cells.append("\(f(old)) → \(f(new))")
            cells.append(ratio(new / old))
        } else {
            cells += ["-", "-"]
        }
        if let (old, new) = both(oldRow.p50FailMs, newRow.p50FailMs) {
            cells.append("\(f(old, 3)) → \(f(new, 3))")
            cells.append(ratio(new / old))
        } else {
            cells += ["-", "-"]
        }
        print("| " + cells.joined(separator: " | ") + " |")
    }
    for newRow in new.rows where newRow.recovery {
        guard let oldRow = old.rows.first(where: { $0.number == newRow.number }) else { continue }
        func text(_ row: RowResult) -> String {
            row.firstPrimaryAfterHealSeconds.map { f($0, 2) + " s" }
                ?? "> \(f(row.wallSeconds - (row.healedAtSeconds ?? 0))) s"
        }
        print("- \(newRow.number) \(newRow.label): first answer from the recovered provider \(text(oldRow)) → \(text(newRow))")
    }
}

// MARK: - Main

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
if options.serve {
    try await serve()
    exit(0)
}
if let paths = options.compare {
    let decoder = JSONDecoder()
    let old = try decoder.decode(RunFile.self, from: Data(contentsOf: URL(fileURLWithPath: paths.old)))
    let new = try decoder.decode(RunFile.self, from: Data(contentsOf: URL(fileURLWithPath: paths.new)))
    compare(old: old, new: new)
    exit(0)
}

let server = try ServerProcess()
let baseURL = "http://127.0.0.1:\(server.port)/v1"
let defaults = FallbackChain.Configuration()
let configurationText = "FallbackChain.Configuration() defaults (no event hook); circuit breaker \(defaults.circuitBreaker); "
    + "retry \(defaults.retry); providers: maxRetries \(Provider("openai", model: "m").maxRetries), "
    + "timeout \(options.attemptTimeout) s; transport AsyncHTTPClientTransport() (failoverClient)"
writeLine(
    "OutageScenario (\(options.engine)): \(options.duration) s per row, concurrency \(options.concurrency), "
        + "recovery rows down for \(options.down) s; mock server in a child process "
        + "(pid \(server.process.processIdentifier))\n  chain: \(configurationText)",
    to: 2
)

var results: [RowResult] = []
do {
    for row in rows where options.only?.contains(row.number) ?? true {
        let result = try await run(row, options: options, server: server, baseURL: baseURL)
        writeLine(
            "  \(row.number). \(row.label): \(f(result.wallSeconds)) s, \(result.clientRequests) client requests, "
                + "\(result.upstream) upstream, \(result.successes) answers",
            to: 2
        )
        results.append(result)
    }
} catch {
    server.stop()
    throw error
}
server.stop()

let file = RunFile(
    engine: options.engine, configuration: configurationText, duration: options.duration,
    concurrency: options.concurrency, rows: results
)
if let path = options.json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(file).write(to: URL(fileURLWithPath: path))
}
printTables(file)
