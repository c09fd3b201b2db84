// Issue 5: what routing and hedging do to the latency tail when one provider is intermittently slow.
//
// Three OpenAI-format providers on one MockLLMServer, each answering in `--base-ms` (20 ms); the FIRST one is slow
// (`--slow-ms`, 400 ms) for 10% of its requests, in a fixed pseudo-random pattern (exactly 2 slow answers in every
// block of 20, positions drawn from a seeded SplitMix64). The same requests (`--requests`, `--concurrency`) run through
// each chain configuration; the table gives the client-side latency of `chain.chat` and the traffic the server saw.
//
// The server runs in a child process (this binary with `--serve`), so its CPU and event loops stay out of the client's
// figures; the parent talks to it over the child's standard input and output:
//   child → parent  `PORT <port>` once listening
//   parent → child  `COUNT <model> <model> ...`, answered `COUNTS <n> <n> ... <abandoned> <connections>`
//   parent closes the child's standard input → the child shuts the server down and exits.
//
// Each configuration has its own three models (`rs<i>-a`, `rs<i>-b`, `rs<i>-c`), scripted identically, so every
// configuration starts from the same script position and its server counts are its own. Before the measured run each
// provider of the chain gets `--warmup` sequential requests pinned to it (RequestOptions.providers), all fast, so
// that percentile hedging and latency routing start with samples; they are excluded from every figure.
//
// Usage: RoutingScenario [--requests 600] [--concurrency 8] [--seed 5] [--warmup 10] [--base-ms 20] [--slow-ms 400]
//                        [--shared-client] [--only 1,2,...]
//   --shared-client  use HTTPClient.shared (one pool of 8 connections per host: the three providers share it because
//                    they share the server's host and port). By default a client whose per-host limit is 24 (3 × 8)
//                    is used, as if each provider had a host, and a pool, of its own.
import AsyncHTTPClient
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
    var requests = 600
    var concurrency = 8
    var seed: UInt64 = 5
    var warmup = 10
    var baseMs = 20
    var slowMs = 400
    var sharedClient = false
    var only: Set<Int>? = nil
    var serve = false
    /// The arguments to pass on to the server process (everything but `--serve`).
    var passThrough: [String] = []

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
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--requests": options.requests = max(1, int(value()))
            case "--concurrency": options.concurrency = max(1, int(value()))
            case "--seed": options.seed = UInt64(int(value()))
            case "--warmup": options.warmup = int(value())
            case "--base-ms": options.baseMs = int(value())
            case "--slow-ms": options.slowMs = int(value())
            case "--shared-client": options.sharedClient = true
            case "--only": options.only = Set(value().split(separator: ",").map { int(String($0)) })
            case "--serve": options.serve = true
            case "-h", "--help":
                print("usage: RoutingScenario [--requests N] [--concurrency N] [--seed N] [--warmup N] [--base-ms N] "
                    + "[--slow-ms N] [--shared-client] [--only 1,2,...]")
                exit(0)
            default: fail("unknown argument \(argument)")
            }
            if argument != "--serve" {
                options.passThrough.append(argument)
                if !["--shared-client"].contains(argument) { options.passThrough.append(arguments[index]) }
            }
            index += 1
        }
        return options
    }
}

func fail(_ message: String) -> Never {
    writeLine("RoutingScenario: \(message)", to: 2)
    exit(1)
}

// MARK: - Scenarios and scripts

struct Scenario: Sendable {
    var number: Int
    var label: String
    var strategy: RoutingStrategy
    var hedging: Hedging?

    var models: [String] { ["a", "b", "c"].map { "rs\(number)-\($0)" } }
}

let scenarios = [
    Scenario(number: 1, label: "ordered", strategy: .ordered, hedging: nil),
    Scenario(number: 2, label: "ordered + hedge .after(60 ms)", strategy: .ordered, hedging: .after(.milliseconds(60))),
    Scenario(number: 3, label: "ordered + hedge .percentile(0.9)", strategy: .ordered, hedging: .percentile(0.9)),
    Scenario(number: 4, label: "latency", strategy: .latency, hedging: nil),
    Scenario(number: 5, label: "latency + hedge .after(60 ms)", strategy: .latency, hedging: .after(.milliseconds(60))),
]

/// SplitMix64, as the library's seeded generator.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Whether each of the first provider's requests after the warm-up is slow: exactly 2 in every block of 20.
func slowPattern(count: Int, seed: UInt64) -> [Bool] {
    var generator = SplitMix64(state: seed)
    var pattern: [Bool] = []
    pattern.reserveCapacity(count + 20)
    while pattern.count < count {
        var block = [Bool](repeating: false, count: 20)
        block[0] = true
        block[1] = true
        block.shuffle(using: &generator)
        pattern += block
    }
    return pattern
}

let answerText = "The capital of France is Paris."

/// The first provider's script: the warm-up answers (fast), then the pattern. Long enough never to run out.
func firstProviderPattern(_ options: Options) -> [Bool] {
    [Bool](repeating: false, count: options.warmup) + slowPattern(count: options.requests * 2 + 40, seed: options.seed)
}

// MARK: - Server mode

func serve(_ options: Options) async throws {
    let server = try await MockLLMServer.start(host: "127.0.0.1", port: 0)
    let fast = MockBehavior.delayed(.milliseconds(options.baseMs), .text(answerText))
    let slow = MockBehavior.delayed(.milliseconds(options.slowMs), .text(answerText))
    let first = firstProviderPattern(options).map { $0 ? slow : fast }
    for scenario in scenarios {
        server.script(scenario.models[0], first)
        server.script(scenario.models[1], fast)
        server.script(scenario.models[2], fast)
    }
    server.script("rs-warm", fast)
    writeLine("PORT \(server.port)", to: 1)
    alarm(900)  // Never outlive a parent that died without closing the pipe.
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        guard words.first == "COUNT" else { continue }
        let all = server.requests
        var counts: [String: Int] = [:]
        for request in all { counts[request.model, default: 0] += 1 }
        let reply = words.dropFirst().map { String(counts[$0] ?? 0) }
            + [String(server.abandonedRequests), String(server.connectionsAccepted)]
        writeLine("COUNTS " + reply.joined(separator: " "), to: 1)
    }
    let summary = "mock server: \(server.requests.count) requests on \(server.connectionsAccepted) connections, "
        + "\(server.abandonedRequests) abandoned by the client"
    writeLine(summary, to: 2)
    try await server.shutdown()
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

// MARK: - The server process, seen from the client

/// The child process running the server, and the pipe protocol to it.
final class ServerProcess {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private var buffer: [UInt8] = []
    private(set) var port = 0

    init(options: Options) throws {
        #if os(Linux)
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        #else
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        #endif
        process.arguments = ["--serve"] + options.passThrough
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
    func readLine() -> String? {
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

    /// The requests the server recorded for each model, then its abandoned-request and connection counts.
    func counts(_ models: [String]) throws -> (perModel: [Int], abandoned: Int, connections: Int) {
        writeLine("COUNT " + models.joined(separator: " "), to: input.fileHandleForWriting.fileDescriptor)
        guard let line = readLine(), line.hasPrefix("COUNTS ") else {
            throw ScenarioError("the server process stopped answering")
        }
        let numbers = line.dropFirst(7).split(separator: " ").compactMap { Int($0) }
        guard numbers.count == models.count + 2 else { throw ScenarioError("bad reply: \(line)") }
        return (Array(numbers.prefix(models.count)), numbers[models.count], numbers[models.count + 1])
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

// MARK: - The measured run

/// Counts the attempts a chain started, per provider (from the event hook).
final class AttemptTally: Sendable {
    private let counts = Mutex([String: Int]())
    func add(_ provider: String) { counts.withLock { $0[provider, default: 0] += 1 } }
    var snapshot: [String: Int] { counts.withLock { $0 } }
}

final class Cursor: Sendable {
    private let next = Mutex(0)
    /// The next request number, or `nil` when `limit` have been taken.
    func take(limit: Int) -> Int? {
        next.withLock { value in
            guard value < limit else { return nil }
            value += 1
            return value - 1
        }
    }
}

struct Sample: Sendable {
    var number: Int
    var milliseconds: Double
    var provider: String
}

struct RunResult {
    var scenario: Scenario
    var samples: [Double]
    var answeredBy: [Int]  // a, b, c
    var firstByQuarter: [Int]  // answers from a among requests 0..<n/4, n/4..<n/2, ...
    var failures: Int
    var serverRequests: [Int]  // a, b, c, measured run only
    var attempts: Int  // attempts the chain started, measured run only
    var slowServed: Int  // scripted-slow answers the first provider's requests drew
    var abandoned: Int
    var connections: Int
    var wall: Duration
    var firstProviderLatency: Duration?  // the chain's decaying average for provider a, at the end

    func percentile(_ q: Double) -> Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let rank = max(1, Int((q * Double(sorted.count)).rounded(.up)))
        return sorted[min(rank, sorted.count) - 1]
    }

    var mean: Double { samples.isEmpty ? .nan : samples.reduce(0, +) / Double(samples.count) }
    var backupRequests: Int { serverRequests.reduce(0, +) - samples.count - failures }
}

let silentLogger = Logger(label: "routing-scenario", factory: { _ in SwiftLogNoOpLogHandler() })

func run(
    _ scenario: Scenario,
    options: Options,
    server: ServerProcess,
    transport: AsyncHTTPClientTransport,
    baseURL: String,
    pattern: [Bool]
) async throws -> RunResult {
    let providers = scenario.models.map {
        Provider("openai", model: $0, apiKey: "routing-key-0123456789", baseURL: baseURL, maxRetries: 0)
    }
    var configuration = FallbackChain.Configuration(strategy: scenario.strategy)
    configuration.hedging = scenario.hedging
    configuration.randomSeed = options.seed
    let tally = AttemptTally()
    let measuring = Mutex(false)
    let chain = FallbackChain(
        providers,
        configuration: configuration,
        transport: transport,
        logger: silentLogger,
        onEvent: { event in
            if case .attemptStarted(let provider, _) = event, measuring.withLock({ $0 }) { tally.add(provider.name) }
        }
    )
    let request = ChatRequest(messages: [.user("What is the capital of France?")], maxTokens: 16)

    // Warm-up: every provider measured, none slow; pinned, so nothing hedges and each model takes exactly `warmup`.
    for provider in providers {
        for _ in 0..<options.warmup {
            _ = try await chain.chat(request, options: .init(providers: [provider.name]))
        }
    }
    let before = try server.counts(scenario.models)
    measuring.withLock { $0 = true }

    let cursor = Cursor()
    let clock = ContinuousClock()
    let started = clock.now
    let outcomes = try await withThrowingTaskGroup(of: ([Sample], Int).self) { group in
        for _ in 0..<options.concurrency {
            group.addTask {
                var samples: [Sample] = []
                var failures = 0
                while let number = cursor.take(limit: options.requests) {
                    let start = clock.now
                    do {
                        let response = try await chain.chat(request)
                        let elapsed = start.duration(to: clock.now)
                        samples.append(Sample(number: number, milliseconds: elapsed.ms, provider: response.providerName))
                    } catch {
                        failures += 1
                    }
                }
                return (samples, failures)
            }
        }
        var all: [([Sample], Int)] = []
        for try await outcome in group { all.append(outcome) }
        return all
    }
    let wall = started.duration(to: clock.now)
    measuring.withLock { $0 = false }
    // Let cancelled slow answers run out on the server before counting, and the event hook drain.
    try await Task.sleep(for: .milliseconds(options.slowMs + 200))
    let after = try server.counts(scenario.models)

    let samples = outcomes.flatMap(\.0)
    let serverRequests = zip(after.perModel, before.perModel).map { $0 - $1 }
    let firstFrom = before.perModel[0]
    let firstTo = min(after.perModel[0], pattern.count)
    let slowServed = firstFrom < firstTo ? pattern[firstFrom..<firstTo].filter { $0 }.count : 0
    return RunResult(
        scenario: scenario,
        samples: samples.map(\.milliseconds),
        answeredBy: providers.map { provider in samples.filter { $0.provider == provider.name }.count },
        firstByQuarter: (0..<4).map { quarter in
            samples.filter { $0.provider == providers[0].name && $0.number * 4 / options.requests == quarter }.count
        },
        failures: outcomes.map(\.1).reduce(0, +),
        serverRequests: serverRequests,
        attempts: tally.snapshot.values.reduce(0, +),
        slowServed: slowServed,
        abandoned: after.abandoned - before.abandoned,
        connections: after.connections - before.connections,
        wall: wall,
        firstProviderLatency: chain.healthReport().first?.latency
    )
}

extension Duration {
    var ms: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

// MARK: - Main

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
if options.serve {
    try await serve(options)
    exit(0)
}

let server = try ServerProcess(options: options)
let baseURL = "http://127.0.0.1:\(server.port)/v1"
let client: HTTPClient
if options.sharedClient {
    client = .shared
} else {
    var configuration = HTTPClient.Configuration.singletonConfiguration
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 24
    client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}
let transport = AsyncHTTPClientTransport(client: client)
let pattern = firstProviderPattern(options)

writeLine(
    "RoutingScenario: \(options.requests) requests per configuration, concurrency \(options.concurrency); "
        + "providers a, b, c answer in \(options.baseMs) ms, a in \(options.slowMs) ms for 10% of its requests "
        + "(2 per block of 20, seed \(options.seed)); warm-up \(options.warmup) pinned requests per provider; "
        + "mock server in a child process (pid \(server.process.processIdentifier)); client "
        + (options.sharedClient ? "HTTPClient.shared (8 connections per host, shared by the 3 providers)"
            : "HTTPClient with 24 connections per host"),
    to: 2
)

// Open the client's connections once, so the first configuration does not pay for them alone.
do {
    let warm = FallbackChain(
        [Provider("openai", model: "rs-warm", apiKey: "routing-key-0123456789", baseURL: baseURL)],
        transport: transport,
        logger: silentLogger
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<(options.concurrency * 2) {
            group.addTask { for _ in 0..<5 { _ = try await warm.chat("warm-up") } }
        }
        try await group.waitForAll()
    }
}

var results: [RunResult] = []
do {
    for scenario in scenarios where options.only?.contains(scenario.number) ?? true {
        let result = try await run(
            scenario, options: options, server: server, transport: transport, baseURL: baseURL, pattern: pattern
        )
        writeLine(
            "  \(scenario.number). \(scenario.label): \(String(format: "%.1f", result.wall.ms / 1000)) s, "
                + "\(result.samples.count) answers, \(result.failures) failures, "
                + "\(result.abandoned) requests abandoned, \(result.connections) new connections",
            to: 2
        )
        results.append(result)
    }
} catch {
    server.stop()
    throw error
}
server.stop()
if !options.sharedClient {
    let shutdown: () async throws -> Void = client.shutdown
    try await shutdown()
}

func f(_ value: Double) -> String { value.isNaN ? "-" : String(format: "%.1f", value) }

print("")
print("| # | configuration | p50 ms | p90 ms | p99 ms | mean ms | max ms | answered a/b/c | server requests a/b/c "
    + "| slow a answers | backup requests | extra traffic |")
print("|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
for result in results {
    let extra = 100 * Double(result.backupRequests) / Double(max(1, result.samples.count))
    let cells = [
        "\(result.scenario.number)",
        result.scenario.label,
        f(result.percentile(0.5)),
        f(result.percentile(0.9)),
        f(result.percentile(0.99)),
        f(result.mean),
        f(result.samples.max() ?? .nan),
        result.answeredBy.map(String.init).joined(separator: "/"),
        result.serverRequests.map(String.init).joined(separator: "/"),
        "\(result.slowServed)",
        "\(result.backupRequests)",
        String(format: "%+.1f%%", extra),
    ]
    print("| " + cells.joined(separator: " | ") + " |")
}
print("")
print("- backup requests: requests the server received beyond one per answered request (hedges that reached the "
    + "server; no request failed, so there are no failovers); extra traffic = backup requests / requests.")
print("- attempts the chains started (event hook), for comparison: "
    + results.map { "\($0.scenario.number): \($0.attempts - $0.samples.count) beyond one per request" }
        .joined(separator: ", "))
print("- answers from a per quarter of the run (by request number): "
    + results.map { "\($0.scenario.number): \($0.firstByQuarter.map(String.init).joined(separator: "/"))" }
        .joined(separator: ", "))
print("- provider a's decaying average latency in the chain's health at the end: "
    + results.map { "\($0.scenario.number): \($0.firstProviderLatency.map { f($0.ms) + " ms" } ?? "-")" }
        .joined(separator: ", "))
