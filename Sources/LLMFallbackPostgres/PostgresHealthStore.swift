import Foundation
import LLMFallback
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A ``HealthStore`` on PostgreSQL: many instances of an application, one view of their providers' health.
///
/// Each instance publishes its providers' health transitions (a breaker opened or closed, a `Retry-After` window, a
/// suspension) to one row per provider and a `NOTIFY` on a channel; every other instance `LISTEN`s and applies them
/// within milliseconds, and reads the table when it starts or reconnects. A recovering provider is probed by at most
/// ``CircuitBreaker/Configuration/halfOpenMaxProbes`` instances at once: each probe takes a lease, an atomic
/// `INSERT … ON CONFLICT DO UPDATE … WHERE` with an expiry in the database's time. Forced probes (sent while every
/// candidate of a request is closed to traffic) take one too, granted at most once per recovery period for the
/// whole fleet.
///
/// Nothing on a request's path waits for the database: ``publish(_:)`` and ``requestProbeLease(for:maxProbes:duration:)``
/// queue work for ``run()``, which owns the one connection. When PostgreSQL is down, slow or restarting, every
/// instance keeps serving on its own view: transitions wait in a bounded queue (the oldest dropped first, counted in
/// `llm_fallback_health_store_dropped_total`), leases are granted locally, the store reconnects with backoff,
/// publishes what waited, reads the table again, and logs the outage once.
///
/// ```swift
/// let store = try PostgresHealthStore(configuration: .init(url: ProcessInfo.processInfo.environment["DATABASE_URL"]!))
/// var configuration = FallbackChain.Configuration()
/// configuration.healthStore = store
/// let chain = FallbackChain(providers, configuration: configuration)
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { try await store.run() }      // or add it to a ServiceGroup: it is a Service
///     _ = try await chain.chat("Hello")
/// }
/// ```
///
/// The password of the URL never appears in logs, errors or descriptions.
public final class PostgresHealthStore: HealthStore, Service, CustomStringConvertible {
    /// How to reach the database and what to name things in it.
    public struct Configuration: Sendable, CustomStringConvertible {
        /// The host.
        public var host: String
        /// The port.
        public var port: Int
        /// The user.
        public var username: String
        /// The password; never shown.
        public var password: String?
        /// The database; the user's own when `nil`.
        public var database: String?
        /// TLS: `disable`, `prefer` or `require` (the URL's `sslmode`).
        public var tlsMode: TLSMode
        /// The table of provider health (created when missing).
        public var table: String
        /// The `LISTEN`/`NOTIFY` channel.
        public var channel: String
        /// This instance's name in the table and in other instances' health reports.
        public var instanceName: String
        /// The most transitions kept while the database cannot be reached; the oldest are dropped beyond it.
        public var maxPendingTransitions: Int
        /// The first wait before reconnecting; doubled after each failure up to ``maxReconnectDelay``.
        public var reconnectDelay: Duration
        /// The longest wait before reconnecting.
        public var maxReconnectDelay: Duration
        /// How long connecting may take.
        public var connectTimeout: Duration

        /// TLS to the database.
        public enum TLSMode: String, Sendable, CaseIterable {
            case disable, prefer, require
        }

        /// The default table name.
        public static let defaultTable = "llm_fallback_health"
        /// The default channel name.
        public static let defaultChannel = "llm_fallback_health"

        /// Creates a configuration from its parts.
        public init(
            host: String,
            port: Int = 5432,
            username: String,
            password: String? = nil,
            database: String? = nil,
            tlsMode: TLSMode = .prefer,
            table: String = Configuration.defaultTable,
            channel: String = Configuration.defaultChannel,
            instanceName: String? = nil
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tlsMode = tlsMode
            self.table = table
            self.channel = channel
            self.instanceName = instanceName ?? Self.defaultInstanceName()
            self.maxPendingTransitions = 1_000
            self.reconnectDelay = .milliseconds(100)
            self.maxReconnectDelay = .seconds(5)
            self.connectTimeout = .seconds(5)
        }

        /// Creates a configuration from a `postgres://user:password@host:port/database?sslmode=disable` URL.
        ///
        /// - Throws: ``PostgresHealthStoreError`` when the URL is not one; its message never shows the password.
        public init(url: String, table: String = Configuration.defaultTable, channel: String = Configuration.defaultChannel, instanceName: String? = nil) throws {
            let parsed = try PostgresURL(url)
            self.init(
                host: parsed.host, port: parsed.port, username: parsed.username, password: parsed.password,
                database: parsed.database, tlsMode: parsed.tlsMode, table: table, channel: channel, instanceName: instanceName
            )
        }

        /// `postgres://user@host:port/database` with the table and channel; never the password.
        public var description: String {
            "postgres://\(username)\(password == nil ? "" : ":<redacted>")@\(host):\(port)/\(database ?? "") (table \(table), channel \(channel))"
        }

        static func defaultInstanceName() -> String {
            let host = ProcessInfo.processInfo.hostName
            return "\(host.isEmpty ? "instance" : host)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt16.random(in: .min ... .max))"
        }

        /// Checks the table and channel names: lowercase SQL identifiers (letters, digits, `_`), at most 63 bytes.
        public static func isValidIdentifier(_ name: String) -> Bool {
            guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
            guard first == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
            return name.utf8.allSatisfy { byte in
                byte == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
        }
    }

    /// Counts, for tests and dashboards (also exported as swift-metrics figures).
    public struct Statistics: Sendable, Hashable {
        /// Transitions written to the database.
        public var published = 0
        /// Transitions dropped because the queue was full.
        public var dropped = 0
        /// Transitions of other instances applied.
        public var received = 0
        /// Leases granted by the database.
        public var leasesGranted = 0
        /// Leases refused by the database (another instance holds them).
        public var leasesRefused = 0
        /// Leases granted locally because the database could not be asked.
        public var leasesGrantedLocally = 0
        /// Connections made (the first and every reconnection).
        public var connections = 0
        /// Whether the store is connected now.
        public var isConnected = false
        /// Transitions waiting to be written.
        public var pending = 0
    }

    private enum Work: Sendable {
        case publish(HealthTransition, at: ContinuousClock.Instant)
        /// A probe lease; `forcedPeriod` is given for a forced probe (see ``lease(_:maxProbes:duration:forcedPeriod:on:)``).
        case lease(ProviderIdentity, maxProbes: Int, duration: Duration, forcedPeriod: Duration?)
    }

    private struct Subscriber {
        weak var value: (any HealthStoreSubscriber)?
    }

    private struct State {
        var queue: [Work] = []
        var queueHead = 0
        var subscribers: [Subscriber] = []
        var statistics = Statistics()
        var pendingPublishes = 0

        mutating func popFirst() -> Work? {
            guard queueHead < queue.count else { return nil }
            let work = queue[queueHead]
            queueHead += 1
            if queueHead > 64, queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            if case .publish = work { pendingPublishes -= 1 }
            return work
        }

        mutating func pushFront(_ work: Work) {
            if queueHead > 0 {
                queueHead -= 1
                queue[queueHead] = work
            } else {
                queue.insert(work, at: 0)
            }
            if case .publish = work { pendingPublishes += 1 }
        }
    }

    /// The configuration.
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let droppedCounter: Counter
    private let publishedCounter: Counter
    private let receivedCounter: Counter
    private let connectedGauge: Gauge

    /// Creates a store; it connects when ``run()`` runs.
    ///
    /// - Throws: ``PostgresHealthStoreError`` when the table or channel name is not a plain SQL identifier.
    public init(configuration: Configuration, logger: Logger = Logger(label: "llm-fallback.health-store"), metricsFactory: (any MetricsFactory)? = nil) throws {
        for (what, name) in [("table", configuration.table), ("channel", configuration.channel)] where !Configuration.isValidIdentifier(name) {
            throw PostgresHealthStoreError("the \(what) name must be lowercase letters, digits and '_' (at most 63), not '\(name.prefix(80))'")
        }
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "health_store"] = "\(configuration.table)@\(configuration.host):\(configuration.port)"
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let factory = metricsFactory ?? MetricsSystem.factory
        droppedCounter = Counter(label: "llm_fallback_health_store_dropped_total", factory: factory)
        publishedCounter = Counter(label: "llm_fallback_health_store_published_total", factory: factory)
        receivedCounter = Counter(label: "llm_fallback_health_store_received_total", factory: factory)
        connectedGauge = Gauge(label: "llm_fallback_health_store_connected", factory: factory)
    }

    public var description: String { "PostgresHealthStore(\(configuration))" }

    /// The store's counts now.
    public var statistics: Statistics {
        state.locked { state in
            var statistics = state.statistics
            statistics.pending = state.pendingPublishes
            return statistics
        }
    }

    // MARK: - HealthStore

    public func subscribe(_ subscriber: any HealthStoreSubscriber) {
        state.locked { state in
            state.subscribers.removeAll { $0.value == nil }
            state.subscribers.append(Subscriber(value: subscriber))
        }
        // A new chain learns the stored state on the next round of the worker.
        wake.yield()
    }

    public func publish(_ transition: HealthTransition) {
        let dropped = state.locked { state -> Work? in
            state.queue.append(.publish(transition, at: .now))
            state.pendingPublishes += 1
            guard state.pendingPublishes > configuration.maxPendingTransitions else { return nil }
            // Drop the oldest transition (never a lease request, which someone waits for).
            guard let index = state.queue[state.queueHead...].firstIndex(where: { if case .publish = $0 { return true } else { return false } }) else { return nil }
            let work = state.queue.remove(at: index)
            state.pendingPublishes -= 1
            state.statistics.dropped += 1
            return work
        }
        if dropped != nil { droppedCounter.increment() }
        wake.yield()
    }

    public func requestProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration) {
        requestLease(provider, maxProbes: maxProbes, duration: duration, forcedPeriod: nil)
    }

    /// Asks, off the caller's path, for a forced probe's lease: granted when fewer than `maxProbes` leases are held
    /// and no instance was granted a probe of the provider within the last `period` (in the database's time).
    public func requestForcedProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration, period: Duration) {
        requestLease(provider, maxProbes: maxProbes, duration: duration, forcedPeriod: period)
    }

    private func requestLease(_ provider: ProviderIdentity, maxProbes: Int, duration: Duration, forcedPeriod: Duration?) {
        let connected = state.locked { state -> Bool in
            guard state.statistics.isConnected else {
                state.statistics.leasesGrantedLocally += 1
                return false
            }
            state.queue.append(.lease(provider, maxProbes: maxProbes, duration: duration, forcedPeriod: forcedPeriod))
            return true
        }
        if connected {
            wake.yield()
        } else {
            // The store cannot be asked: the instance probes on its own, as it would without a store.
            answerLease(provider, granted: true, retryIn: nil)
        }
    }

    // MARK: - The connection

    /// Connects, listens and publishes until cancelled (or until a graceful shutdown when run as a `Service`);
    /// reconnects with backoff whenever the connection fails. Returns when cancelled or shut down; a database
    /// that cannot be reached is never an error here (the chains serve on their own view meanwhile).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
    }

    private func loop() async {
        var iterator = wakeups.makeAsyncIterator()
        var delay = configuration.reconnectDelay
        var down = false
        while !Task.isCancelled {
            do {
                let connection = try await connect()
                let ended: Result<Void, any Error>
                do {
                    try await session(connection, iterator: &iterator) {
                        if down { self.logger.notice("health store reconnected; published what waited and read the shared state again") }
                        down = false
                        delay = self.configuration.reconnectDelay
                    }
                    ended = .success(())
                } catch {
                    ended = .failure(error)
                }
                // A connection must be closed before it is released, however the session ended.
                try? await connection.close()
                try ended.get()
            } catch {
                if Task.isCancelled { break }
                if !down {
                    // Once per outage, not per request nor per retry.
                    logger.warning(
                        "health store unavailable; serving on local health until it returns",
                        metadata: ["error": "\(Self.describe(error))"]
                    )
                    down = true
                }
            }
            setConnected(false)
            do {
                try await Task.sleep(for: delay)
            } catch {
                break
            }
            delay = min(delay * 2, configuration.maxReconnectDelay)
        }
        setConnected(false)
    }

    private func setConnected(_ connected: Bool) {
        let stranded = state.locked { state -> [ProviderIdentity] in
            state.statistics.isConnected = connected
            if connected { state.statistics.connections += 1 }
            guard !connected else { return [] }
            // Lease requests that will not reach the database are granted locally.
            var kept: [Work] = []
            var stranded: [ProviderIdentity] = []
            while let work = state.popFirst() {
                if case .lease(let provider, _, _, _) = work {
                    stranded.append(provider)
                    state.statistics.leasesGrantedLocally += 1
                } else {
                    kept.append(work)
                }
            }
            state.queue = kept
            state.queueHead = 0
            state.pendingPublishes = kept.count
            return stranded
        }
        connectedGauge.record(connected ? 1 : 0)
        for provider in stranded { answerLease(provider, granted: true, retryIn: nil) }
    }

    private func connect() async throws -> PostgresConnection {
        let tls: PostgresConnection.Configuration.TLS
        switch configuration.tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var connectionConfiguration = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: tls
        )
        connectionConfiguration.options.connectTimeout = .milliseconds(Self.milliseconds(configuration.connectTimeout))
        var quiet = logger
        quiet.logLevel = .critical
        return try await PostgresConnection.connect(configuration: connectionConfiguration, id: 1, logger: quiet)
    }

    private struct ListenEnded: Error {}

    /// One connection's life: the table, the channel, the queued work, the shared state, then work as it comes.
    private func session(
        _ connection: PostgresConnection,
        iterator: inout AsyncStream<Void>.Iterator,
        onReady: () -> Void
    ) async throws {
        try await ensureTable(connection)
        let broken = Flag()
        try await connection.listen(on: configuration.channel) { notifications in
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    defer {
                        broken.set()
                        self.wake.yield()
                    }
                    for try await notification in notifications { self.receive(notification.payload) }
                }
                // Publish what waited first, so the read that follows sees this instance's own news.
                try await drain(connection)
                try await resync(connection)
                setConnected(true)
                onReady()
                var synced = state.locked { $0.subscribers.count }
                while !broken.isSet {
                    try await drain(connection)
                    let subscribers = state.locked { $0.subscribers.count }
                    if subscribers != synced {
                        synced = subscribers
                        try await resync(connection)
                    }
                    if broken.isSet { break }
                    guard await iterator.next() != nil else { break }
                }
                group.cancelAll()
                if !Task.isCancelled { throw ListenEnded() }
            }
        }
    }

    private func drain(_ connection: PostgresConnection) async throws {
        while let work = state.locked({ $0.popFirst() }) {
            do {
                try await perform(work, on: connection)
            } catch {
                state.locked { $0.pushFront(work) }
                throw error
            }
        }
    }

    private var table: String { configuration.table }

    private func ensureTable(_ connection: PostgresConnection) async throws {
        do {
            try await createTable(connection)
        } catch {
            // Two instances creating the table at once: one of them fails on the catalog's unique index, and the
            // table exists when it asks again.
            try await createTable(connection)
        }
    }

    private func createTable(_ connection: PostgresConnection) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS \(unescaped: table) (
                provider_key text PRIMARY KEY,
                label text NOT NULL,
                state text NOT NULL DEFAULT 'closed',
                open_until timestamptz,
                failed_probes integer NOT NULL DEFAULT 0,
                retry_until timestamptz,
                probe_leases integer NOT NULL DEFAULT 0,
                lease_until timestamptz,
                last_probe_at timestamptz,
                updated_by text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        // A table made by a version without forced probes' leases gets their column.
        try await connection.query(
            "ALTER TABLE \(unescaped: table) ADD COLUMN IF NOT EXISTS last_probe_at timestamptz",
            logger: logger
        )
    }

    private func perform(_ work: Work, on connection: PostgresConnection) async throws {
        switch work {
        case .publish(let transition, let at):
            try await write(transition, age: ContinuousClock.now - at, on: connection)
            state.locked { $0.statistics.published += 1 }
            publishedCounter.increment()
        case .lease(let provider, let maxProbes, let duration, let forcedPeriod):
            try await lease(provider, maxProbes: maxProbes, duration: duration, forcedPeriod: forcedPeriod, on: connection)
        }
    }

    /// Writes a transition and notifies the channel in one statement. A window that waited in the queue is
    /// shortened by its wait, so it ends when it would have; windows are stored in the database's time.
    private func write(_ transition: HealthTransition, age: Duration, on connection: PostgresConnection) async throws {
        let key = transition.provider.key
        let label = transition.provider.description
        let origin = configuration.instanceName
        let channel = configuration.channel
        let change = transition.change
        if let period = change.openDuration {
            let remaining = Self.milliseconds(period - age)
            let payload = Notice(origin: origin, key: key, state: "open", openMs: remaining, failedProbes: change.failedProbes, retryMs: nil).payload
            try await connection.query(
                """
                WITH changed AS (
                    INSERT INTO \(unescaped: table) AS t (provider_key, label, state, open_until, failed_probes, updated_by)
                    VALUES (\(key), \(label), 'open', now() + \(remaining) * interval '1 millisecond', \(change.failedProbes), \(origin))
                    ON CONFLICT (provider_key) DO UPDATE SET state = 'open', open_until = EXCLUDED.open_until,
                        failed_probes = EXCLUDED.failed_probes, probe_leases = 0, lease_until = NULL,
                        updated_by = EXCLUDED.updated_by, updated_at = now()
                    RETURNING 1
                )
                SELECT pg_notify(\(channel), \(payload)) FROM changed
                """,
                logger: logger
            )
        } else if change.isClosed {
            let payload = Notice(origin: origin, key: key, state: "closed", openMs: nil, failedProbes: 0, retryMs: nil).payload
            try await connection.query(
                """
                WITH changed AS (
                    INSERT INTO \(unescaped: table) AS t (provider_key, label, state, updated_by)
                    VALUES (\(key), \(label), 'closed', \(origin))
                    ON CONFLICT (provider_key) DO UPDATE SET state = 'closed', open_until = NULL, failed_probes = 0,
                        probe_leases = 0, lease_until = NULL, last_probe_at = NULL,
                        updated_by = EXCLUDED.updated_by, updated_at = now()
                    RETURNING 1
                )
                SELECT pg_notify(\(channel), \(payload)) FROM changed
                """,
                logger: logger
            )
        } else if let window = change.retryAfter {
            let remaining = Self.milliseconds(window - age)
            guard remaining > 0 else { return }
            let payload = Notice(origin: origin, key: key, state: "retry", openMs: nil, failedProbes: 0, retryMs: remaining).payload
            try await connection.query(
                """
                WITH changed AS (
                    INSERT INTO \(unescaped: table) AS t (provider_key, label, retry_until, updated_by)
                    VALUES (\(key), \(label), now() + \(remaining) * interval '1 millisecond', \(origin))
                    ON CONFLICT (provider_key) DO UPDATE SET
                        retry_until = greatest(coalesce(t.retry_until, now()), EXCLUDED.retry_until),
                        updated_by = EXCLUDED.updated_by, updated_at = now()
                    RETURNING 1
                )
                SELECT pg_notify(\(channel), \(payload)) FROM changed
                """,
                logger: logger
            )
        }
    }

    /// Takes a probe lease atomically. An ordinary lease is granted when the provider's open period has passed in
    /// the database's time and fewer than `maxProbes` unexpired leases are held. A forced probe's lease (with
    /// `forcedPeriod`) does not wait for the open period, but for `forcedPeriod` since the last probe any instance
    /// was granted (`last_probe_at`, which every grant sets), with the same bound on leases held: the fleet probes
    /// a provider that is down everywhere at most `maxProbes` times per recovery period. A refusal reads the row,
    /// so the instance also learns what it may have missed (a close, a longer period), and when to ask again.
    private func lease(
        _ provider: ProviderIdentity,
        maxProbes: Int,
        duration: Duration,
        forcedPeriod: Duration?,
        on connection: PostgresConnection
    ) async throws {
        let key = provider.key
        let milliseconds = Self.milliseconds(duration)
        let granted: [PostgresRow]
        if let forcedPeriod {
            let period = Self.milliseconds(forcedPeriod)
            granted = try await connection.query(
                """
                INSERT INTO \(unescaped: table) AS t (provider_key, label, probe_leases, lease_until, last_probe_at, updated_by)
                VALUES (\(key), \(provider.description), 1, now() + \(milliseconds) * interval '1 millisecond', now(), \(configuration.instanceName))
                ON CONFLICT (provider_key) DO UPDATE SET
                    probe_leases = CASE WHEN t.lease_until IS NULL OR t.lease_until <= now() THEN 1 ELSE t.probe_leases + 1 END,
                    lease_until = now() + \(milliseconds) * interval '1 millisecond',
                    last_probe_at = now()
                WHERE (t.last_probe_at IS NULL OR t.last_probe_at <= now() - \(period) * interval '1 millisecond')
                    AND (t.lease_until IS NULL OR t.lease_until <= now() OR t.probe_leases < \(max(1, maxProbes)))
                RETURNING 1
                """,
                logger: logger
            ).collect()
        } else {
            granted = try await connection.query(
                """
                INSERT INTO \(unescaped: table) AS t (provider_key, label, state, probe_leases, lease_until, last_probe_at, updated_by)
                VALUES (\(key), \(provider.description), 'open', 1, now() + \(milliseconds) * interval '1 millisecond', now(), \(configuration.instanceName))
                ON CONFLICT (provider_key) DO UPDATE SET
                    probe_leases = CASE WHEN t.lease_until IS NULL OR t.lease_until <= now() THEN 1 ELSE t.probe_leases + 1 END,
                    lease_until = now() + \(milliseconds) * interval '1 millisecond',
                    last_probe_at = now()
                WHERE t.state = 'open' AND (t.open_until IS NULL OR t.open_until <= now())
                    AND (t.lease_until IS NULL OR t.lease_until <= now() OR t.probe_leases < \(max(1, maxProbes)))
                RETURNING 1
                """,
                logger: logger
            ).collect()
        }
        if !granted.isEmpty {
            state.locked { $0.statistics.leasesGranted += 1 }
            answerLease(provider, granted: true, retryIn: nil)
            return
        }
        state.locked { $0.statistics.leasesRefused += 1 }
        let rows = try await readRows(connection, keys: [key])
        var retryIn: Duration?
        for row in rows {
            if row.update.isClosed || (row.update.openFor ?? .zero) > .zero { deliver(row.update.with(provider)) }
            if let forcedPeriod {
                // When the last probe's period ends, or the leases held do, whichever is later.
                let sinceProbe = row.sinceLastProbe.map { forcedPeriod - $0 } ?? .zero
                retryIn = max(sinceProbe, row.leaseRemaining ?? .zero)
            } else {
                retryIn = row.leaseRemaining ?? row.update.openFor
            }
        }
        answerLease(provider, granted: false, retryIn: retryIn)
    }

    private struct Row {
        var key: String
        var update: HealthUpdate
        var leaseRemaining: Duration?
        /// How long ago an instance was last granted a probe of the provider.
        var sinceLastProbe: Duration?
    }

    private func readRows(_ connection: PostgresConnection, keys: [String]) async throws -> [Row] {
        let rows = try await connection.query(
            """
            SELECT provider_key, state, updated_by, failed_probes,
                (extract(epoch from (open_until - now())) * 1000)::bigint,
                (extract(epoch from (retry_until - now())) * 1000)::bigint,
                CASE WHEN probe_leases > 0 THEN (extract(epoch from (lease_until - now())) * 1000)::bigint END,
                (extract(epoch from (now() - last_probe_at)) * 1000)::bigint
            FROM \(unescaped: table) WHERE provider_key = ANY(\(keys))
            """,
            logger: logger
        )
        var result: [Row] = []
        let placeholder = ProviderIdentity(kind: "", baseURL: "", model: "", keyDigest: "")
        for try await (key, state, origin, failedProbes, openMs, retryMs, leaseMs, probeMs) in rows.decode((String, String, String, Int, Int64?, Int64?, Int64?, Int64?).self) {
            let open = state == "open"
            result.append(Row(
                key: key,
                update: HealthUpdate(
                    provider: placeholder,
                    openFor: open ? .milliseconds(max(0, openMs ?? 0)) : nil,
                    failedProbes: failedProbes,
                    isClosed: !open,
                    retryAfter: retryMs.flatMap { $0 > 0 ? .milliseconds($0) : nil },
                    origin: origin
                ),
                leaseRemaining: leaseMs.flatMap { $0 > 0 ? .milliseconds($0) : nil },
                sinceLastProbe: probeMs.map { .milliseconds(max(0, $0)) }
            ))
        }
        return result
    }

    /// Reads the stored state of every subscribed provider and applies it.
    private func resync(_ connection: PostgresConnection) async throws {
        let identities = subscribedIdentities()
        guard !identities.isEmpty else { return }
        let rows = try await readRows(connection, keys: Array(identities.keys))
        for row in rows {
            guard let identity = identities[row.key] else { continue }
            deliver(row.update.with(identity))
        }
    }

    private func subscribedIdentities() -> [String: ProviderIdentity] {
        let subscribers = state.locked { $0.subscribers.compactMap(\.value) }
        var identities: [String: ProviderIdentity] = [:]
        for subscriber in subscribers {
            for identity in subscriber.providerIdentities { identities[identity.key] = identity }
        }
        return identities
    }

    private func receive(_ payload: String) {
        guard let notice = Notice(payload), notice.origin != configuration.instanceName else { return }
        guard let identity = subscribedIdentities()[notice.key] else { return }
        let update = HealthUpdate(
            provider: identity,
            openFor: notice.state == "open" ? .milliseconds(max(0, notice.openMs ?? 0)) : nil,
            failedProbes: notice.failedProbes,
            isClosed: notice.state == "closed",
            retryAfter: notice.retryMs.map { .milliseconds(max(0, $0)) },
            origin: notice.origin
        )
        state.locked { $0.statistics.received += 1 }
        receivedCounter.increment()
        deliver(update)
    }

    private func deliver(_ update: HealthUpdate) {
        let subscribers = state.locked { $0.subscribers.compactMap(\.value) }
        for subscriber in subscribers where subscriber.providerIdentities.contains(update.provider) {
            subscriber.apply(update)
        }
    }

    private func answerLease(_ provider: ProviderIdentity, granted: Bool, retryIn: Duration?) {
        let subscribers = state.locked { $0.subscribers.compactMap(\.value) }
        for subscriber in subscribers where subscriber.providerIdentities.contains(provider) {
            subscriber.probeLease(for: provider, granted: granted, retryIn: retryIn)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let limit: Int64 = 100 * 365 * 86_400 * 1000
        guard seconds < limit / 1000 else { return limit }
        guard seconds > -limit / 1000 else { return -limit }
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// A description of a connection error that cannot carry the password (postgres-nio's errors never do, and the
    /// configuration is not part of them).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            var text = "\(error.code)"
            if let message = error.serverInfo?[.message] { text += ": \(message)" }
            if let underlying = error.underlying { text += " (\(underlying))" }
            return text
        }
        return "\(error)"
    }
}

extension HealthUpdate {
    fileprivate func with(_ provider: ProviderIdentity) -> HealthUpdate {
        var copy = self
        copy.provider = provider
        return copy
    }
}

/// A flag set once, read from other tasks.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.locked { $0 = true } }
    var isSet: Bool { value.locked { $0 } }
}

/// The payload of a `NOTIFY`: `v1|origin|key|state|open ms|failed probes|retry ms` (empty fields for none).
struct Notice: Hashable {
    var origin: String
    var key: String
    var state: String
    var openMs: Int64?
    var failedProbes: Int
    var retryMs: Int64?

    var payload: String {
        let safeOrigin = origin.replacingOccurrences(of: "|", with: "_")
        return "v1|\(safeOrigin)|\(key)|\(state)|\(openMs.map(String.init) ?? "")|\(failedProbes)|\(retryMs.map(String.init) ?? "")"
    }

    init(origin: String, key: String, state: String, openMs: Int64?, failedProbes: Int, retryMs: Int64?) {
        self.origin = origin
        self.key = key
        self.state = state
        self.openMs = openMs
        self.failedProbes = failedProbes
        self.retryMs = retryMs
    }

    init?(_ payload: String) {
        let fields = payload.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 7, fields[0] == "v1", ["open", "closed", "retry"].contains(fields[3]) else { return nil }
        origin = String(fields[1])
        key = String(fields[2])
        state = String(fields[3])
        openMs = Int64(fields[4])
        failedProbes = Int(fields[5]) ?? 0
        retryMs = Int64(fields[6])
    }
}

/// A health store's configuration error. Its message never shows a password.
public struct PostgresHealthStoreError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `postgres://` and `postgresql://` URLs.
struct PostgresURL {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String?
    var tlsMode: PostgresHealthStore.Configuration.TLSMode

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql"
        else {
            throw PostgresHealthStoreError("the health store URL must be postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresHealthStoreError("the health store URL has no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresHealthStoreError("the health store URL has no user")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw PostgresHealthStoreError("the health store URL's port must be 1...65535")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? nil : (path.removingPercentEncoding ?? path)
        var mode = PostgresHealthStore.Configuration.TLSMode.prefer
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            switch item.value ?? "" {
            case "disable": mode = .disable
            case "allow", "prefer": mode = .prefer
            case "require", "verify-ca", "verify-full": mode = .require
            default: throw PostgresHealthStoreError("the health store URL's sslmode must be disable, prefer or require")
            }
        }
        self.tlsMode = mode
    }
}
