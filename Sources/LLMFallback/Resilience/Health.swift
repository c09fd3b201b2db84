import Synchronization

/// One provider's health, as a status page would show it.
public struct ProviderHealth: Sendable, Hashable {
    /// The entry's label (``Provider/name``).
    public var name: String
    /// The provider kind.
    public var kind: String
    /// The model.
    public var model: String
    /// The breaker's state.
    public var state: CircuitBreaker.State
    /// Consecutive failures counted by the breaker.
    public var consecutiveFailures: Int
    /// Time until an open breaker lets a probe through.
    public var reopensIn: Duration?
    /// Time until a `Retry-After` the provider sent expires.
    public var retryAfterRemaining: Duration?
    /// The decaying average latency (time to first token for streams, whole time for answers).
    public var latency: Duration?
    /// Attempts sent to this provider.
    public var attempts: Int
    /// Attempts it answered.
    public var successes: Int
    /// Attempts that failed, by error class label.
    public var failuresByClass: [String: Int]
    /// The last error's summary.
    public var lastError: String?
    /// This provider's share of all answers the chain got (0...1).
    public var share: Double
    /// Where the current breaker state or `Retry-After` window was learned: by this instance, or from another
    /// through the chain's ``FallbackChain/Configuration/healthStore``.
    public var source: HealthSource = .local

    /// Attempts that failed.
    public var failures: Int { failuresByClass.values.reduce(0, +) }
}

/// Why a provider was skipped without an attempt.
public struct SkippedProvider: Sendable, Hashable, CustomStringConvertible {
    /// Why.
    public enum Reason: Hashable, Sendable {
        /// Its circuit breaker is open (or its half-open probes are taken).
        case circuitOpen
        /// It asked for a pause with `Retry-After` that has not passed.
        case retryAfter
        /// It cannot continue a partial answer (no prefill), and the stream it would have finished needed one.
        case cannotContinue
    }
    /// The entry's label.
    public var provider: String
    /// Why it was skipped.
    public var reason: Reason
    /// How long until it can be tried again.
    public var availableIn: Duration

    public var description: String {
        switch reason {
        case .circuitOpen: return "\(provider): skipped, circuit open for \(formatDuration(availableIn))"
        case .retryAfter: return "\(provider): skipped, retry after \(formatDuration(availableIn))"
        case .cannotContinue: return "\(provider): skipped, cannot continue a partial answer"
        }
    }
}

/// The chain's in-memory record of every provider's health: breakers, Retry-After windows, retry budgets,
/// latency, counts.
///
/// Each provider's record has a lock of its own, so requests to different providers never contend; the few figures
/// that span the chain (forced probes in flight) are separate. Every read and update goes through this narrow
/// interface, so a store shared between instances can replace it without touching the engine.
final class HealthRegistry: Sendable {
    struct Entry {
        var breaker: CircuitBreaker
        var notBefore: Duration = .zero
        var budget: RetryBudgetWindow
        var latencyMs: Double?
        var lastSampleAt: Duration = .zero
        var recentLatencies: [Double] = []
        var recentNext = 0
        /// Requests routed here on a stale or missing latency figure that have not finished (latency routing).
        var exploring = 0
        /// When this provider was last probed while every candidate was closed to traffic.
        var lastForcedProbe: Duration?
        var attempts = 0
        var successes = 0
        var failuresByClass: [String: Int] = [:]
        var lastError: String?
        /// Where the last transition came from.
        var source: HealthSource = .local
        /// With a shared store: probe leases granted and not yet used.
        var leases = 0
        /// With a shared store: when the leases granted and not used are dropped (the store's lease ends then).
        var leasesExpireAt: Duration?
        /// With a shared store: the lease asked for whose answer has not come (one at a time).
        var leaseRequested: LeaseKind?
        /// With a shared store: an ordinary lease was refused; ask again from this time.
        var leaseRetryAt: Duration?
        /// With a shared store: a forced probe's lease was refused; ask again from this time.
        var forcedLeaseRetryAt: Duration?

        /// Resets the lease bookkeeping when the breaker moves.
        mutating func endLeases() {
            leases = 0
            leasesExpireAt = nil
            leaseRequested = nil
            leaseRetryAt = nil
            forcedLeaseRetryAt = nil
        }

        /// Drops granted leases that were not used in time: the store's lease may have ended, and another
        /// instance may hold it now.
        mutating func dropExpiredLeases(now: Duration) {
            if let end = leasesExpireAt, now >= end {
                leases = 0
                leasesExpireAt = nil
            }
        }
    }

    /// Which kind of probe a lease is asked for.
    enum LeaseKind: Equatable {
        /// An ordinary half-open probe: the open period has passed.
        case recovery
        /// A forced probe: every candidate of a request was closed to traffic.
        case forced
    }

    /// One provider's record and its lock.
    final class Cell: Sendable {
        let state: Mutex<Entry>
        init(_ entry: Entry) { state = Mutex(entry) }
    }

    enum Admission: Equatable {
        case allowed
        case probe
        case rejected(until: Duration, reason: SkippedProvider.Reason)
    }

    private let cells: [Cell]
    /// The link to a shared health store, when the chain has one.
    let shared: SharedHealth?
    /// Probes let through because every candidate of a request was closed to traffic, in flight across the chain.
    private let forcedProbes = Mutex(0)
    /// The most forced probes in flight (the breaker's ``CircuitBreaker/Configuration/halfOpenMaxProbes``).
    let maxForcedProbes: Int
    /// The longest a `Retry-After` keeps a provider out of rotation.
    let longestSkip: Duration
    /// Latency samples older than this are forgotten, so a recovered provider is measured again.
    let latencyMaxAge: Duration
    /// Weight of a new sample in the decaying average.
    let latencySmoothing: Double
    /// The ceiling of every latency figure, in milliseconds (an hour). A failure counts as a sample twice as slow
    /// as the average; without a ceiling an outage of a few hundred requests doubles it past `Duration`'s range.
    static let slowestLatencyMs: Double = 3_600_000

    init(
        count: Int,
        breaker: CircuitBreaker.Configuration,
        latencyMaxAge: Duration,
        latencySmoothing: Double = 0.3,
        retryBudget: RetryBudget = .init(),
        longestSkip: Duration = RetryPolicy().maxRetryAfterSkip,
        shared: SharedHealth? = nil
    ) {
        self.shared = shared
        let entry = Entry(breaker: CircuitBreaker(configuration: breaker), budget: RetryBudgetWindow(retryBudget))
        cells = (0..<count).map { _ in Cell(entry) }
        maxForcedProbes = breaker.halfOpenMaxProbes
        self.longestSkip = longestSkip.clamped(to: Bounds.longestDuration)
        self.latencyMaxAge = latencyMaxAge
        self.latencySmoothing = latencySmoothing
    }

    /// Whether a first attempt may go to the provider now; a request admitted counts toward its retry budget.
    func admit(_ index: Int, now: Duration) -> Admission {
        guard let shared else {
            return cells[index].state.locked { entry in Self.admit(&entry, now: now) }
        }
        // With a shared store a probe needs a lease from the store: asked for here without waiting, and until it
        // comes the provider stays skipped, as while it was open.
        var askForLease = false
        let admission = cells[index].state.locked { entry -> Admission in
            entry.dropExpiredLeases(now: now)
            if entry.notBefore <= now, entry.breaker.awaitsProbe(now: now), entry.leases == 0 {
                if entry.leaseRequested == nil, entry.leaseRetryAt.map({ now >= $0 }) ?? true {
                    entry.leaseRequested = .recovery
                    askForLease = true
                }
                return .rejected(until: max(now, entry.leaseRetryAt ?? now), reason: .circuitOpen)
            }
            let admission = Self.admit(&entry, now: now)
            if admission == .probe { entry.leases = max(0, entry.leases - 1) }
            return admission
        }
        if askForLease { shared.requestLease(index) }
        return admission
    }

    private static func admit(_ entry: inout Entry, now: Duration) -> Admission {
        if entry.notBefore > now {
            return .rejected(until: entry.notBefore, reason: .retryAfter)
        }
        let admission: Admission
        switch entry.breaker.admit(now: now) {
        case .allowed: admission = .allowed
        case .probe: admission = .probe
        case .rejected(let until): return .rejected(until: until, reason: .circuitOpen)
        }
        entry.budget.noteRequest(now: now)
        return admission
    }

    /// Takes one retry from the provider's budget, if its breaker is closed and its budget allows another.
    func takeRetry(_ index: Int, now: Duration) -> Bool {
        cells[index].state.locked { entry in
            guard entry.breaker.state == .closed else { return false }
            return entry.budget.takeRetry(now: now)
        }
    }

    /// Whether a retry decided earlier may still go: the breaker is still closed (other requests may have opened
    /// it meanwhile) and no `Retry-After` runs beyond now.
    func isOpenToRetry(_ index: Int, now: Duration) -> Bool {
        cells[index].state.locked { entry in
            entry.notBefore <= now && entry.breaker.state == .closed
        }
    }

    /// Lets one request through to a provider that is closed to traffic (every candidate was), unless
    /// ``maxForcedProbes`` such probes are already in flight for the chain. Balance with ``releaseForcedProbe()``.
    ///
    /// With a shared store the probe also needs a lease from the store, for the whole fleet: asked for here without
    /// waiting, and until it is granted the answer is `false` (the request fails at once, as when the chain's own
    /// bound is reached).
    func forceProbe(_ index: Int, now: Duration) -> Bool {
        // At most one forced probe per provider per open period (its breaker's current recovery period): a
        // provider that fails fast must not be probed back to back by a stream of requests.
        enum Due { case no, yes, askForLease(period: Duration) }
        func due(mayAsk: Bool) -> Due {
            cells[index].state.locked { entry -> Due in
                let period = entry.breaker.configuration.recoveryPeriod(afterFailedProbes: entry.breaker.failedProbes)
                if let last = entry.lastForcedProbe, now - last < period { return .no }
                guard shared != nil else { return .yes }
                entry.dropExpiredLeases(now: now)
                if entry.leases > 0 { return .yes }
                guard mayAsk, entry.leaseRequested == nil, entry.forcedLeaseRetryAt.map({ now >= $0 }) ?? true else { return .no }
                entry.leaseRequested = .forced
                return .askForLease(period: period)
            }
        }
        switch due(mayAsk: true) {
        case .no:
            return false
        case .yes:
            break
        case .askForLease(let period):
            shared?.requestLease(index, forcedPeriod: period)
            // A store that cannot reach its backend answers at once (granted): this request may use it.
            guard case .yes = due(mayAsk: false) else { return false }
        }
        let taken = forcedProbes.locked { count -> Bool in
            guard count < maxForcedProbes else { return false }
            count += 1
            return true
        }
        guard taken else { return false }
        let started = cells[index].state.locked { entry -> Bool in
            if shared != nil {
                // Another request may have used the lease since it was counted.
                guard entry.leases > 0 else { return false }
                entry.leases -= 1
            }
            entry.lastForcedProbe = now
            entry.breaker.forceProbe(now: now)
            entry.budget.noteRequest(now: now)
            return true
        }
        if !started { releaseForcedProbe() }
        return started
    }

    /// Ends a probe started by ``forceProbe(_:now:)``.
    func releaseForcedProbe() {
        forcedProbes.locked { $0 = max(0, $0 - 1) }
    }

    /// Forced probes in flight (for tests).
    var forcedProbesInFlight: Int { forcedProbes.locked { $0 } }

    /// Records an attempt's end; returns the breaker's new state when it changed.
    func record(
        _ index: Int,
        outcome: CircuitBreaker.Outcome,
        wasProbe: Bool,
        now: Duration,
        latency: Duration?,
        error: ProviderError?
    ) -> CircuitBreaker.State? {
        let result = cells[index].state.locked { entry -> (CircuitBreaker.State?, HealthTransition.Change?) in
            entry.attempts += 1
            if let error {
                entry.failuresByClass[error.kind.label, default: 0] += 1
                entry.lastError = error.description
            } else if outcome == .success {
                entry.successes += 1
            }
            if let latency, outcome != .neutral {
                let sample = min(max(0, latency.milliseconds), Self.slowestLatencyMs)
                let stale = now - entry.lastSampleAt > latencyMaxAge
                if let current = entry.latencyMs, !stale {
                    // A failure counts as a slow sample: never faster than what we knew.
                    let value = outcome == .failure ? min(max(sample, current * 2), Self.slowestLatencyMs) : sample
                    entry.latencyMs = current + latencySmoothing * (value - current)
                } else {
                    entry.latencyMs = outcome == .failure ? min(max(sample, 1) * 2, Self.slowestLatencyMs) : sample
                }
                entry.lastSampleAt = now
                if entry.recentLatencies.count < 64 {
                    entry.recentLatencies.append(sample)
                } else {
                    entry.recentLatencies[entry.recentNext] = sample
                    entry.recentNext = (entry.recentNext + 1) % 64
                }
            }
            let change = entry.breaker.record(outcome, wasProbe: wasProbe, now: now)
            if change != nil {
                entry.source = .local
                entry.endLeases()
            }
            return (change, Self.transition(change, entry.breaker, now: now))
        }
        if let shared, let transition = result.1 { shared.publish(index, transition) }
        return result.0
    }

    /// What a breaker's change means to the other instances.
    private static func transition(_ change: CircuitBreaker.State?, _ breaker: CircuitBreaker, now: Duration) -> HealthTransition.Change? {
        switch change {
        case .open?:
            return .opened(for: max(.zero, (breaker.opensAt ?? now) - now), failedProbes: breaker.failedProbes)
        case .closed?:
            return .closed
        case .halfOpen?, nil:
            return nil
        }
    }

    /// Gives back a probe slot that was never used (the request's deadline passed before the attempt): no attempt
    /// is counted.
    func releaseProbe(_ index: Int, now: Duration) {
        cells[index].state.locked { _ = $0.breaker.record(.neutral, wasProbe: true, now: now) }
    }

    func suspend(_ index: Int, now: Duration, until: Duration) -> CircuitBreaker.State? {
        let result = cells[index].state.locked { entry -> (CircuitBreaker.State?, HealthTransition.Change?) in
            let before = entry.breaker.opensAt
            let change = entry.breaker.trip(until: until)
            guard change != nil || entry.breaker.opensAt != before else { return (nil, nil) }
            entry.source = .local
            entry.endLeases()
            let period = max(.zero, (entry.breaker.opensAt ?? now) - now)
            return (change, .opened(for: period, failedProbes: entry.breaker.failedProbes))
        }
        if let shared, let transition = result.1 { shared.publish(index, transition) }
        return result.0
    }

    /// Keeps the provider out of rotation for `retryAfter` (at most ``longestSkip``); never shortens a window.
    ///
    /// With a shared store the window is published when it is new or grows by more than a second, so a burst of
    /// rate limits is one write, not one per request.
    func setNotBefore(_ index: Int, now: Duration, retryAfter: Duration) {
        let until = now + min(max(.zero, retryAfter), longestSkip)
        let publish = cells[index].state.locked { entry -> Bool in
            let before = entry.notBefore
            entry.notBefore = max(entry.notBefore, until)
            let grown = before <= now || entry.notBefore - before > .seconds(1)
            if grown { entry.source = .local }
            return grown
        }
        if let shared, publish { shared.publish(index, .retryAfter(until - now)) }
    }

    // MARK: - The shared store's news

    /// Applies another instance's transition (or the stored state) to every entry with that identity.
    func apply(_ update: HealthUpdate, to indices: [Int], now: Duration) -> [(Int, CircuitBreaker.State)] {
        var changes: [(Int, CircuitBreaker.State)] = []
        for index in indices {
            let change = cells[index].state.locked { entry -> CircuitBreaker.State? in
                var change: CircuitBreaker.State?
                var learned = false
                if update.isClosed {
                    change = entry.breaker.adoptClosed()
                    learned = change != nil
                    if learned { entry.endLeases() }
                } else if let openFor = update.openFor {
                    let until = now + openFor.clamped(to: Bounds.longestDuration)
                    let before = entry.breaker.opensAt
                    change = entry.breaker.adoptOpen(until: until, failedProbes: update.failedProbes)
                    learned = change != nil || entry.breaker.opensAt != before
                    if learned { entry.endLeases() }
                }
                if let retryAfter = update.retryAfter, retryAfter > .zero {
                    let until = now + min(retryAfter, longestSkip)
                    if until > entry.notBefore {
                        entry.notBefore = until
                        learned = true
                    }
                }
                if learned { entry.source = .peer(update.origin) }
                return change
            }
            if let change { changes.append((index, change)) }
        }
        return changes
    }

    /// The store's answer to a lease request; a grant is kept for `leaseDurations[index]` at most (the store's
    /// lease has ended by then, and another instance may hold it).
    func leaseAnswer(_ indices: [Int], granted: Bool, retryIn: Duration?, now: Duration, leaseDurations: [Duration]) {
        for index in indices {
            cells[index].state.locked { entry in
                guard let kind = entry.leaseRequested else { return }
                entry.leaseRequested = nil
                if granted {
                    // Kept only while it is still of use: an ordinary probe once the open period has passed, a
                    // forced one while the provider is closed to traffic.
                    let useful: Bool
                    switch kind {
                    case .recovery: useful = entry.breaker.awaitsProbe(now: now)
                    case .forced: useful = entry.breaker.state != .closed || entry.notBefore > now
                    }
                    if useful {
                        entry.leases += 1
                        entry.leasesExpireAt = now + leaseDurations[index]
                    }
                } else {
                    let period = entry.breaker.configuration.recoveryPeriod(afterFailedProbes: entry.breaker.failedProbes)
                    let retryAt = now + min(max(retryIn ?? period, .milliseconds(10)), period)
                    switch kind {
                    case .recovery: entry.leaseRetryAt = retryAt
                    case .forced: entry.forcedLeaseRetryAt = retryAt
                    }
                }
            }
        }
    }

    /// Probe leases held and not used (for tests).
    func leasesHeld(_ index: Int) -> Int { cells[index].state.locked { $0.leases } }

    /// The breaker's open period for `index` right now (for suspensions that follow the breaker's schedule).
    func recoveryPeriod(_ index: Int) -> Duration {
        cells[index].state.locked { $0.breaker.configuration.recoveryPeriod(afterFailedProbes: $0.breaker.failedProbes) }
    }

    /// Average latencies in milliseconds, `nil` for providers without a recent sample.
    func latencies(now: Duration) -> [Double?] {
        cells.map { cell in
            cell.state.locked { entry in
                guard let latency = entry.latencyMs, now - entry.lastSampleAt <= latencyMaxAge else { return nil }
                return latency
            }
        }
    }

    /// Marks one more request exploring `index` (routed there without a recent latency figure), unless `limit`
    /// are already in flight; balance a `true` with ``endExploring(_:)``.
    func beginExploring(_ index: Int, limit: Int) -> Bool {
        cells[index].state.locked { entry in
            guard entry.exploring < limit else { return false }
            entry.exploring += 1
            return true
        }
    }

    func endExploring(_ index: Int) {
        cells[index].state.locked { $0.exploring = max(0, $0.exploring - 1) }
    }

    /// The `percentile` (0...1) of the provider's recent latencies, `nil` without recent samples.
    func latencyPercentile(_ index: Int, _ percentile: Double, now: Duration) -> Duration? {
        cells[index].state.locked { entry in
            guard !entry.recentLatencies.isEmpty, now - entry.lastSampleAt <= latencyMaxAge else { return nil }
            let sorted = entry.recentLatencies.sorted()
            let position = min(sorted.count - 1, max(0, Int(saturating: (Double(sorted.count - 1) * percentile).rounded(.up))))
            return .clampedMilliseconds(sorted[position])
        }
    }

    func snapshot(providers: [Provider], now: Duration) -> [ProviderHealth] {
        let entries = cells.map { cell in cell.state.locked { $0 } }
        let total = max(1, entries.reduce(0) { $0.saturatingAdd($1.successes) })
        return zip(providers, entries).map { provider, entry in
            ProviderHealth(
                name: provider.name,
                kind: provider.kind,
                model: provider.model,
                state: entry.breaker.state,
                consecutiveFailures: entry.breaker.consecutiveFailures,
                reopensIn: entry.breaker.opensAt.map { max(.zero, $0 - now) },
                retryAfterRemaining: entry.notBefore > now ? entry.notBefore - now : nil,
                latency: entry.latencyMs.map { .clampedMilliseconds($0) },
                attempts: entry.attempts,
                successes: entry.successes,
                failuresByClass: entry.failuresByClass,
                lastError: entry.lastError,
                share: Double(entry.successes) / Double(total),
                source: entry.source
            )
        }
    }
}

/// A provider's retry budget over a sliding window, in ten buckets: O(1) per request and per retry.
struct RetryBudgetWindow: Sendable {
    let budget: RetryBudget
    private let bucketNanoseconds: Int64
    private var numbers = [Int64](repeating: .min, count: 10)
    private var requests = [Int](repeating: 0, count: 10)
    private var retries = [Int](repeating: 0, count: 10)

    init(_ budget: RetryBudget) {
        self.budget = budget
        bucketNanoseconds = max(1, budget.window.clampedNanoseconds / 10)
    }

    private mutating func slot(_ now: Duration) -> Int {
        let number = max(0, now.clampedNanoseconds) / bucketNanoseconds
        let slot = Int(number % 10)
        if numbers[slot] != number {
            numbers[slot] = number
            requests[slot] = 0
            retries[slot] = 0
        }
        return slot
    }

    mutating func noteRequest(now: Duration) {
        requests[slot(now)] += 1
    }

    /// Takes one retry from the budget if it allows one: retries within the window stay under
    /// `minimumRetries + ratio × requests`.
    mutating func takeRetry(now: Duration) -> Bool {
        let current = slot(now)
        let number = numbers[current]
        var recentRequests = 0
        var recentRetries = 0
        for index in 0..<10 where numbers[index] > number - 10 && numbers[index] <= number {
            recentRequests += requests[index]
            recentRetries += retries[index]
        }
        let allowed = Double(budget.minimumRetries) + budget.ratio * Double(recentRequests)
        guard Double(recentRetries) < allowed else { return false }
        retries[current] += 1
        return true
    }
}
