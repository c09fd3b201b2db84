import Foundation
@testable import LLMFallback
@testable import LLMFallbackPostgres
import LLMFallbackTesting
import Logging
import PostgresTestSupport
import Synchronization
import Testing

/// One instance of an application: its store (its own connection) and its chain.
struct Instance {
    let store: PostgresHealthStore
    let chain: FallbackChain

    /// - Parameters:
    ///   - recovery: The first open period: a second, longer on a run that says it is slow (``TestTime``), so that
    ///     what must happen within one period does on a sanitized or loaded machine.
    ///   - models: The chain's providers on `server`, by model.
    ///   - maxRecovery: The longest open period (the default lets each failed probe double it).
    ///   - shared: Whether the chain uses the store (a test that must fail without it turns it off).
    init(
        name: String,
        url: String,
        server: MockLLMServer,
        recovery: Duration = TestTime.scaled(.seconds(1)),
        maxRecovery: Duration = .seconds(300),
        models: [String] = ["primary", "backup"],
        shared: Bool = true
    ) throws {
        store = try PostgresHealthStore(configuration: .init(url: url, instanceName: name))
        var configuration = FallbackChain.Configuration(
            circuitBreaker: .init(failureThreshold: 2, recoveryTimeout: recovery, maxRecoveryTimeout: maxRecovery),
            retry: .immediate,
            randomSeed: 1
        )
        if shared { configuration.healthStore = store }
        chain = FallbackChain(models.map(server.provider), configuration: configuration)
    }

    func primary() -> ProviderHealth { chain.healthReport()[0] }
}

extension MockLLMServer {
    func provider(_ model: String) -> Provider {
        // The mock answers at once; the timeout only has to outlast a slow (sanitized, loaded) machine.
        var provider = Provider("openai", model: model, apiKey: "sk-shared-test-key", baseURL: openAIBaseURL, timeout: .seconds(30), maxRetries: 0)
        provider.name = model
        return provider
    }
}

/// Runs the stores of `instances` for the duration of `body`.
func running(_ instances: [Instance], _ body: @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for instance in instances { group.addTask { try await instance.store.run() } }
        defer { group.cancelAll() }
        try await eventually(.seconds(10), "every store connected") { instances.allSatisfy { $0.store.statistics.isConnected } }
        try await body()
    }
}

func withPostgresAndServer(_ body: @Sendable (TestPostgres, MockLLMServer) async throws -> Void) async throws {
    let postgres = try TestPostgres.start()
    defer { postgres.destroy() }
    let server = try await MockLLMServer.start()
    do {
        try await body(postgres, server)
    } catch {
        try? await server.shutdown()
        throw error
    }
    try await server.shutdown()
}

@Suite("Shared health through PostgreSQL", .serialized, .enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
struct PostgresHealthStoreTests {
    @Test("B routes straight to the backup once A's breaker opened; exactly one instance probes after the recovery timeout")
    func breakerSharedAndOneProbe() async throws {
        try await withPostgresAndServer { postgres, server in
            server.script("primary", .status(500))
            let a = try Instance(name: "a", url: postgres.url, server: server)
            let b = try Instance(name: "b", url: postgres.url, server: server)
            try await running([a, b]) {
                for _ in 0..<2 { #expect(try await a.chain.chat("hi").providerName == "backup") }
                #expect(a.primary().state == .open)
                #expect(a.primary().source == .local)
                let opened = ContinuousClock.now
                try await eventually(.seconds(2), "B learns A's open breaker") { b.primary().state == .open }
                print("propagation of the open breaker from A to B: \(ContinuousClock.now - opened)")
                #expect(b.primary().source == .peer("a"))
                for _ in 0..<5 { #expect(try await b.chain.chat("hi").providerName == "backup") }
                #expect(server.requests(for: "primary").count == 2)  // B sent the primary nothing

                // After the recovery timeout both keep sending requests: one probe in all, which fails and reopens.
                // (The lease is asked of the database off the request path: on a loaded machine its grant can take a
                // while, so the requests go on until the probe was sent, within a deadline, and then no more than
                // one probe may have gone.)
                try await eventually(.seconds(5), "the recovery timeout passes") {
                    a.primary().reopensIn == .zero && b.primary().reopensIn == .zero
                }
                try await eventually(.seconds(5), "one instance probes the primary") {
                    async let fromA = a.chain.chat("hi")
                    async let fromB = b.chain.chat("hi")
                    _ = try await (fromA, fromB)
                    return server.requests(for: "primary").count >= 3
                }
                #expect(server.requests(for: "primary").count == 3)
                try await eventually(.seconds(2), "both open again") { a.primary().state == .open && b.primary().state == .open }

                // The primary recovers: the next period's one probe closes it for both.
                server.script("primary", .text("primary is back"))
                try await eventually(.seconds(6), "a probe closes the breaker for both") {
                    async let fromA = a.chain.chat("hi")
                    async let fromB = b.chain.chat("hi")
                    _ = try await (fromA, fromB)
                    return a.primary().state == .closed && b.primary().state == .closed
                }
                #expect(server.requests(for: "primary").count >= 4)
                #expect(try await b.chain.chat("hi").providerName == "primary")
            }
        }
    }

    @Test("A Retry-After seen by A is honoured by B")
    func retryAfterShared() async throws {
        try await withPostgresAndServer { postgres, server in
            server.script("primary", [.status(429, headers: ["retry-after": "30"]), .text("primary")])
            let a = try Instance(name: "a", url: postgres.url, server: server)
            let b = try Instance(name: "b", url: postgres.url, server: server)
            try await running([a, b]) {
                #expect(try await a.chain.chat("hi").providerName == "backup")
                try await eventually(.seconds(2), "B learns the Retry-After") { b.primary().retryAfterRemaining != nil }
                let remaining = try #require(b.primary().retryAfterRemaining)
                #expect(remaining > .seconds(25) && remaining <= .seconds(30))
                #expect(b.primary().source == .peer("a"))
                for _ in 0..<3 { #expect(try await b.chain.chat("hi").providerName == "backup") }
                #expect(server.requests(for: "primary").count == 1)
            }
        }
    }

    @Test("A full outage: forced probes take the fleet's lease, so both instances together probe once per recovery period")
    func forcedProbesShared() async throws {
        try await withPostgresAndServer { postgres, server in
            server.script("primary", .status(500))
            // A single-provider chain: once its breaker is open every request has every candidate closed, and the
            // engine would force-probe it. Periods stay at one second (no doubling), so they can be counted.
            let period = TestTime.scaled(.seconds(1))
            let a = try Instance(name: "a", url: postgres.url, server: server, recovery: period, maxRecovery: period, models: ["primary"])
            let b = try Instance(name: "b", url: postgres.url, server: server, recovery: period, maxRecovery: period, models: ["primary"])
            try await running([a, b]) {
                for _ in 0..<2 { await #expect(throws: AllProvidersFailed.self) { _ = try await a.chain.chat("hi") } }
                try await eventually(.seconds(5), "B learns A's open breaker") { b.primary().state == .open }
                let opening = server.requests(for: "primary").count
                #expect(opening == 2)

                // Both instances send requests for five periods; every request fails (the probes upstream, the
                // others at once with every circuit open), and the moment each probe reaches the provider is noted.
                let window = period * 5
                let result = try await FleetLoad.run(on: [a.chain, b.chain], for: window, server: server, model: "primary")
                let probes = result.arrivals.count
                print("forced probes of a provider down for both instances over \(window): \(probes), gaps \(result.gaps)")
                #expect(result.otherFailures.isEmpty, "\(result.otherFailures)")
                #expect(result.failedFast > 100)
                // The fleet keeps probing (a provider that comes back is found), but once per period at most: the
                // grants are a period apart in the database's time, so no two probes arrive within half a period
                // (each instance on its own would probe at once, and each period).
                #expect(probes >= 2)
                #expect(probes <= 6, "at most one probe per period in \(window)")
                #expect(result.gaps.allSatisfy { $0 >= period / 2 }, "probes closer than half a period: \(result.gaps)")
                #expect(a.store.statistics.leasesGranted + b.store.statistics.leasesGranted >= probes)
            }
        }
    }

    @Test("With the database stopped both keep answering; when it returns they converge")
    func databaseOutage() async throws {
        try await withPostgresAndServer { postgres, server in
            let a = try Instance(name: "a", url: postgres.url, server: server, recovery: .seconds(30))
            let b = try Instance(name: "b", url: postgres.url, server: server, recovery: .seconds(30))
            try await running([a, b]) {
                try postgres.stop()
                try await eventually(.seconds(5), "both notice the outage") {
                    !a.store.statistics.isConnected && !b.store.statistics.isConnected
                }
                #expect(try await a.chain.chat("hi").providerName == "primary")
                #expect(try await b.chain.chat("hi").providerName == "primary")
                server.script("primary", .status(500))
                for _ in 0..<2 { #expect(try await a.chain.chat("hi").providerName == "backup") }
                #expect(a.primary().state == .open)
                #expect(a.store.statistics.pending == 1)
                #expect(try await b.chain.chat("hi").providerName == "backup")  // B still on its own view

                try postgres.startServer()
                try await eventually(.seconds(15), "both reconnect") { a.store.statistics.isConnected && b.store.statistics.isConnected }
                try await eventually(.seconds(5), "B learns what A published after the outage") { b.primary().state == .open }
                let sent = server.requests(for: "primary").count
                for _ in 0..<3 { #expect(try await b.chain.chat("hi").providerName == "backup") }
                #expect(server.requests(for: "primary").count == sent)
                #expect(a.store.statistics.pending == 0)
            }
        }
    }

    @Test("A new instance reads the shared state from the table when it starts")
    func startupReadsTable() async throws {
        try await withPostgresAndServer { postgres, server in
            server.script("primary", .status(500))
            let a = try Instance(name: "a", url: postgres.url, server: server, recovery: .seconds(30))
            try await running([a]) {
                for _ in 0..<2 { _ = try await a.chain.chat("hi") }
                try await eventually(.seconds(2), "A published") { a.store.statistics.published == 1 }
                let late = try Instance(name: "late", url: postgres.url, server: server, recovery: .seconds(30))
                try await running([late]) {
                    try await eventually(.seconds(2), "the late instance reads the row") { late.primary().state == .open }
                    let reopens = try #require(late.primary().reopensIn)
                    #expect(reopens > .seconds(25) && reopens <= .seconds(30))
                    #expect(late.primary().source == .peer("a"))
                }
            }
        }
    }

    @Test("Propagation delay of a transition from one instance to another (p50, p99)")
    func propagation() async throws {
        let postgres = try TestPostgres.start()
        defer { postgres.destroy() }
        let sender = try PostgresHealthStore(configuration: .init(url: postgres.url, instanceName: "sender"))
        let receiver = try PostgresHealthStore(configuration: .init(url: postgres.url, instanceName: "receiver"))
        let identity = ProviderIdentity(kind: "openai", baseURL: "http://x", model: "m", keyDigest: "")
        let probe = RecordingSubscriber([identity])
        receiver.subscribe(probe)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await sender.run() }
            group.addTask { try await receiver.run() }
            defer { group.cancelAll() }
            try await eventually(.seconds(10), "connected") { sender.statistics.isConnected && receiver.statistics.isConnected }
            var delays: [Duration] = []
            for round in 1...200 {
                let start = ContinuousClock.now
                sender.publish(HealthTransition(provider: identity, change: .retryAfter(.seconds(Int64(round)))))
                try await eventually(.seconds(2), "update \(round) arrives") { probe.count >= round }
                delays.append(ContinuousClock.now - start)
            }
            delays.sort()
            let p50 = delays[delays.count / 2]
            let p99 = delays[delays.count * 99 / 100]
            print("health store propagation over 200 transitions: p50 \(p50), p99 \(p99), max \(delays.last!)")
            #expect(p99 < .seconds(1))
        }
    }

    @Test("Without a database, transitions wait in a bounded queue (oldest dropped) and leases are granted locally")
    func boundedQueueWhileDown() async throws {
        var configuration = try PostgresHealthStore.Configuration(url: "postgres://nobody:pw@127.0.0.1:1/none?sslmode=disable")
        configuration.maxPendingTransitions = 3
        let store = try PostgresHealthStore(configuration: configuration)
        let identity = ProviderIdentity(kind: "openai", baseURL: "http://x", model: "m", keyDigest: "")
        let subscriber = RecordingSubscriber([identity])
        store.subscribe(subscriber)
        for second in 1...5 { store.publish(HealthTransition(provider: identity, change: .retryAfter(.seconds(Int64(second))))) }
        #expect(store.statistics.pending == 3)
        #expect(store.statistics.dropped == 2)
        store.requestProbeLease(for: identity, maxProbes: 1, duration: .seconds(1))
        #expect(subscriber.leases == [true])
    }
}

@Suite("Health store parts without a database")
struct HealthStorePartsTests {
    @Test("SHA-256 matches FIPS 180-4's vectors")
    func sha256() {
        #expect(SHA256Digest.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256Digest.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256Digest.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("An identity holds the key's digest, never the key")
    func identity() throws {
        let resolved = try Provider("openai", model: "gpt-4o", apiKey: "sk-very-secret").resolved(environment: [:])
        let identity = ProviderIdentity(resolved)
        #expect(identity.keyDigest == SHA256Digest.hex(Array("sk-very-secret".utf8)))
        #expect(!"\(identity) \(identity.key) \(String(reflecting: identity))".contains("sk-very-secret"))
        let other = try Provider("openai", model: "gpt-4o", apiKey: "sk-other").resolved(environment: [:])
        #expect(ProviderIdentity(other).key != identity.key)
    }

    @Test("The password never shows in descriptions or errors")
    func password() throws {
        let configuration = try PostgresHealthStore.Configuration(url: "postgres://app:hunter2-secret@db:5433/health")
        #expect(configuration.port == 5433 && configuration.database == "health" && configuration.password == "hunter2-secret")
        let store = try PostgresHealthStore(configuration: configuration)
        #expect(!"\(configuration) \(store)".contains("hunter2"))
        for bad in ["mysql://a:hunter2@h/db", "postgres://:hunter2@h/db", "postgres://a:hunter2@/db", "postgres://a:hunter2@h/db?sslmode=odd"] {
            #expect(throws: PostgresHealthStoreError.self) { try PostgresHealthStore.Configuration(url: bad) }
            do { _ = try PostgresHealthStore.Configuration(url: bad) } catch { #expect(!"\(error)".contains("hunter2")) }
        }
        #expect(throws: PostgresHealthStoreError.self) { try PostgresHealthStore(configuration: .init(host: "h", username: "u", table: "x; DROP TABLE y")) }
    }

    @Test("Notification payloads round-trip; hostile ones are ignored")
    func notices() {
        let notice = Notice(origin: "a|b", key: "k", state: "open", openMs: 1500, failedProbes: 2, retryMs: nil)
        let parsed = Notice(notice.payload)
        #expect(parsed?.origin == "a_b" && parsed?.openMs == 1500 && parsed?.failedProbes == 2 && parsed?.retryMs == nil)
        for hostile in ["", "v1", "v2|a|k|open||0|", "v1|a|k|exploded||0|", String(repeating: "|", count: 10_000)] {
            #expect(Notice(hostile) == nil)
        }
    }
}

final class RecordingSubscriber: HealthStoreSubscriber {
    let providerIdentities: [ProviderIdentity]
    private let state = Mutex<(updates: [HealthUpdate], leases: [Bool])>(([], []))
    init(_ identities: [ProviderIdentity]) { providerIdentities = identities }
    func apply(_ update: HealthUpdate) { state.withLock { $0.updates.append(update) } }
    func probeLease(for provider: ProviderIdentity, granted: Bool, retryIn: Duration?) { state.withLock { $0.leases.append(granted) } }
    var count: Int { state.withLock { $0.updates.count } }
    var leases: [Bool] { state.withLock { $0.leases } }
}

/// Requests sent back to back (a few milliseconds apart) from several chains for a while, and when each request
/// reached the mock's `model`.
enum FleetLoad {
    struct Result {
        /// When each upstream request arrived, from the start.
        var arrivals: [Duration]
        /// Requests that failed at once with every circuit open.
        var failedFast: Int
        /// Failures of any other kind than the probes' own and the fast ones.
        var otherFailures: [String]
        /// The time between consecutive arrivals.
        var gaps: [Duration] { zip(arrivals.dropFirst(), arrivals).map { $0 - $1 } }
    }

    /// What one task of the load saw; each task keeps its own, so the load shares no state but the chains.
    private struct Tally: Sendable {
        var arrivals: [Duration] = []
        var fast = 0
        var other: [String] = []
    }

    static func run(on chains: [FallbackChain], for window: Duration, server: MockLLMServer, model: String) async throws -> Result {
        let start = ContinuousClock.now
        let end = start + window
        let base = server.requests(for: model).count
        // Each task returns its own tally and the group sums them: no lock to share. (A shared `Mutex` here was
        // reported by ThreadSanitizer: under contention the standard library's Linux `Mutex` is taken and given
        // back by the kernel (FUTEX_LOCK_PI/FUTEX_UNLOCK_PI), which the sanitizer cannot see.)
        let total = try await withThrowingTaskGroup(of: Tally.self) { group in
            // The watcher: notes when the count of upstream requests grows (5 ms resolution).
            group.addTask {
                var seen = base
                var tally = Tally()
                while ContinuousClock.now < end + .milliseconds(200) {
                    let count = server.requests(for: model).count
                    if count > seen {
                        tally.arrivals += Array(repeating: ContinuousClock.now - start, count: count - seen)
                        seen = count
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
                return tally
            }
            for chain in chains {
                group.addTask {
                    var tally = Tally()
                    while ContinuousClock.now < end {
                        do {
                            _ = try await chain.chat("hi")
                            tally.other.append("answered")
                        } catch let failed as AllProvidersFailed {
                            if failed.allCircuitsOpen {
                                tally.fast += 1
                            } else if !failed.failures.allSatisfy({ $0.kind == .serverError }) {
                                tally.other.append("\(failed)")
                            }
                        }
                        // Pacing of the load, not a wait for a state.
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    return tally
                }
            }
            var total = Tally()
            for try await tally in group {
                total.arrivals += tally.arrivals
                total.fast += tally.fast
                total.other += tally.other
            }
            return total
        }
        return Result(arrivals: total.arrivals.sorted(), failedFast: total.fast, otherFailures: total.other)
    }
}
