import Synchronization

/// Where a chain shares its providers' health with other instances of the same application.
///
/// By default a chain keeps health in its own memory (``FallbackChain/Configuration/healthStore`` is `nil`): each
/// instance learns of an outage by itself, and nothing is added to the request path. Give every instance the same
/// shared store (such as `PostgresHealthStore` from the `LLMFallbackPostgres` product) and they share what they
/// learn:
///
/// ```swift
/// var configuration = FallbackChain.Configuration()
/// configuration.healthStore = store            // one store object per process
/// let chain = FallbackChain(providers, configuration: configuration)
/// ```
///
/// The contract keeps the database off the request path:
/// - The chain calls ``publish(_:)`` for each health *transition* of a provider (breaker opened, closed, a
///   `Retry-After` window, a suspension), never per request. The call must return at once: a store queues the
///   transition and sends it in the background, dropping the oldest when its bounded queue is full.
/// - The chain calls ``requestProbeLease(for:maxProbes:duration:)`` when a provider's recovery period has passed; it
///   does not wait for the answer. Until a lease is granted through ``HealthStoreSubscriber/probeLease(for:granted:retryIn:)``,
///   the provider stays skipped. At most `maxProbes` leases may be held across the fleet at once. A store that
///   cannot reach its backend grants the lease itself, so the instance probes as it would on its own.
/// - When every candidate of a request is closed to traffic, the chain would probe the one that reopens soonest (a
///   forced probe); with a store it calls ``requestForcedProbeLease(for:maxProbes:duration:period:)`` instead, and
///   the request fails at once (every circuit open) unless a lease granted earlier is at hand. So a full outage
///   costs the fleet, not each instance, `maxProbes` probes per recovery period.
/// - The store delivers other instances' transitions, and the current state when it connects or reconnects,
///   through ``HealthStoreSubscriber/apply(_:)``. Windows are remaining durations measured on the store's own clock,
///   which the chain adds to its clock: clock skew between instances does not matter.
///
/// Providers are matched across instances by their ``ProviderIdentity`` (kind, base URL, model and a digest of the
/// key), never by the key itself.
public protocol HealthStore: Sendable {
    /// Subscribes a chain to the store: its providers and where news for them goes. Called once by each chain that
    /// uses the store, when the chain is created. The store holds the subscriber weakly or for its own lifetime.
    func subscribe(_ subscriber: any HealthStoreSubscriber)

    /// Queues a transition for the other instances; returns at once, whatever the backend's state.
    func publish(_ transition: HealthTransition)

    /// Asks, without waiting, for the right to send one half-open probe to `provider`; the answer comes through the
    /// subscriber's ``HealthStoreSubscriber/probeLease(for:granted:retryIn:)``.
    ///
    /// - Parameters:
    ///   - provider: The provider whose recovery period has passed.
    ///   - maxProbes: The most leases held at once across all instances (the breaker's
    ///     ``CircuitBreaker/Configuration/halfOpenMaxProbes``).
    ///   - duration: How long a lease lasts unless a probe's result is published first.
    func requestProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration)

    /// Asks, without waiting, for the right to send one forced probe to `provider`: a probe sent while every
    /// candidate of a request is closed to traffic, before its open period (or `Retry-After` window) has passed.
    /// The answer comes through the subscriber's ``HealthStoreSubscriber/probeLease(for:granted:retryIn:)``.
    ///
    /// The store grants it when fewer than `maxProbes` leases are held for the provider and no instance was granted
    /// a probe of it (forced or not) within the last `period`, so the fleet sends at most `maxProbes` probes per
    /// recovery period however many instances see the outage. A store that cannot reach its backend grants it
    /// itself, as for ``requestProbeLease(for:maxProbes:duration:)``.
    ///
    /// The default implementation asks for an ordinary lease (``requestProbeLease(for:maxProbes:duration:)``): a
    /// store without forced leases lets a forced probe go only when an ordinary one could.
    ///
    /// - Parameters:
    ///   - provider: The provider that reopens soonest among a request's candidates.
    ///   - maxProbes: The most leases held at once across all instances.
    ///   - duration: How long a lease lasts unless a probe's result is published first.
    ///   - period: The provider's current recovery period: the least time between two probes of it in the fleet.
    func requestForcedProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration, period: Duration)
}

extension HealthStore {
    /// Asks for an ordinary lease: a store without forced leases lets a forced probe go only when an ordinary probe
    /// could (its provider's open period has passed).
    public func requestForcedProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration, period: Duration) {
        requestProbeLease(for: provider, maxProbes: maxProbes, duration: duration)
    }
}

/// The chain's side of a ``HealthStore``: what it shares and where the store's news goes.
///
/// Its methods are called from the store's background work; they take a lock briefly and never wait.
public protocol HealthStoreSubscriber: AnyObject, Sendable {
    /// The providers the chain has, in its order.
    var providerIdentities: [ProviderIdentity] { get }
    /// Applies another instance's transition, or the stored state read at start or reconnect.
    func apply(_ update: HealthUpdate)
    /// The answer to ``HealthStore/requestProbeLease(for:maxProbes:duration:)``: when not granted, `retryIn` says
    /// when asking again makes sense (the current holders' lease ends).
    func probeLease(for provider: ProviderIdentity, granted: Bool, retryIn: Duration?)
}

/// A provider's identity shared by every instance: the same kind, base URL, model and key make the same provider.
///
/// The key is kept only as its SHA-256 digest, so neither the identity nor a store ever holds it.
public struct ProviderIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The provider kind (``Provider/kind``).
    public var kind: String
    /// The resolved base URL.
    public var baseURL: String
    /// The model.
    public var model: String
    /// The lowercase hex SHA-256 digest of the key; empty when the provider has none.
    public var keyDigest: String

    /// Creates an identity from its parts.
    public init(kind: String, baseURL: String, model: String, keyDigest: String) {
        self.kind = kind
        self.baseURL = baseURL
        self.model = model
        self.keyDigest = keyDigest
    }

    /// Creates the identity of a resolved provider; the key is hashed and not kept.
    public init(_ resolved: ResolvedProvider) {
        self.init(
            kind: resolved.provider.kind,
            baseURL: resolved.baseURL,
            model: resolved.provider.model,
            keyDigest: resolved.apiKey.map { SHA256Digest.hex(Array($0.utf8)) } ?? ""
        )
    }

    /// A stable key for the identity: the hex SHA-256 digest of its parts, 64 characters.
    public var key: String {
        SHA256Digest.hex(Array("\(kind)\n\(baseURL)\n\(model)\n\(keyDigest)".utf8))
    }

    /// `kind model at baseURL`; never the key or its digest.
    public var description: String { "\(kind) \(model) at \(redactingCredentials(baseURL))" }
}

/// A health transition of one provider, published to the other instances.
public struct HealthTransition: Sendable, Hashable {
    /// What changed.
    public struct Change: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case opened(for: Duration, failedProbes: Int)
            case closed
            case retryAfter(Duration)
        }
        let base: Base

        /// The breaker opened (after failures, a failed probe or a suspension) for `duration`; `failedProbes` is
        /// the count of failed probes in a row that made the period.
        public static func opened(for duration: Duration, failedProbes: Int) -> Change {
            Change(base: .opened(for: duration, failedProbes: failedProbes))
        }
        /// A probe succeeded: the breaker closed.
        public static let closed = Change(base: .closed)
        /// The provider asked not to be called for `duration` (`Retry-After`).
        public static func retryAfter(_ duration: Duration) -> Change { Change(base: .retryAfter(duration)) }

        /// The open period, for an opening.
        public var openDuration: Duration? {
            if case .opened(let duration, _) = base { return duration }
            return nil
        }
        /// Failed probes in a row, for an opening.
        public var failedProbes: Int {
            if case .opened(_, let count) = base { return count }
            return 0
        }
        /// Whether the breaker closed.
        public var isClosed: Bool { base == .closed }
        /// The `Retry-After` window, for one.
        public var retryAfter: Duration? {
            if case .retryAfter(let duration) = base { return duration }
            return nil
        }

        public var description: String {
            switch base {
            case .opened(let duration, let probes): return "opened for \(formatDuration(duration)) (\(probes) failed probes)"
            case .closed: return "closed"
            case .retryAfter(let duration): return "retry after \(formatDuration(duration))"
            }
        }
    }

    /// The provider.
    public var provider: ProviderIdentity
    /// What changed.
    public var change: Change

    /// Creates a transition.
    public init(provider: ProviderIdentity, change: Change) {
        self.provider = provider
        self.change = change
    }
}

/// A provider's shared state as a store delivers it: another instance's transition, or the stored row read at start.
public struct HealthUpdate: Sendable, Hashable {
    /// The provider.
    public var provider: ProviderIdentity
    /// Whether the breaker is open, and for how much longer (zero: the period has passed, awaiting a probe).
    public var openFor: Duration?
    /// Failed probes in a row behind the open period.
    public var failedProbes: Int
    /// Whether the provider's breaker closed.
    public var isClosed: Bool
    /// How much longer a `Retry-After` window lasts.
    public var retryAfter: Duration?
    /// The instance that published it.
    public var origin: String

    /// Creates an update.
    public init(provider: ProviderIdentity, openFor: Duration?, failedProbes: Int = 0, isClosed: Bool, retryAfter: Duration?, origin: String) {
        self.provider = provider
        self.openFor = openFor
        self.failedProbes = failedProbes
        self.isClosed = isClosed
        self.retryAfter = retryAfter
        self.origin = origin
    }
}

/// Where a provider's current health came from.
public struct HealthSource: Sendable, Hashable, CustomStringConvertible {
    /// The instance that published it; `nil` when this instance learned it itself.
    public var instance: String?

    /// Learned by this instance's own requests.
    public static let local = HealthSource(instance: nil)
    /// Learned from another instance through the health store.
    public static func peer(_ instance: String) -> HealthSource { HealthSource(instance: instance) }

    /// Whether it came from another instance.
    public var isPeer: Bool { instance != nil }

    public var description: String { instance.map { "peer \($0)" } ?? "local" }
}

/// SHA-256 (FIPS 180-4), for provider identities. The core library links no crypto package; this is the plain
/// algorithm, checked against the standard's test vectors (and swift-crypto) in the tests.
enum SHA256Digest {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(data[b]) << 24 | UInt32(data[b + 1]) << 16 | UInt32(data[b + 2]) << 8 | UInt32(data[b + 3])
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d
            h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - $0 * 8)) } }
    }

    static func hex(_ message: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(64)
        for byte in digest(message) {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return text
    }

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
}

/// A chain's link to its ``HealthStore``: publishes the registry's transitions, asks for leases, and applies the
/// store's news to the registry on the chain's clock. Held by the registry; the store should hold it weakly.
final class SharedHealth: HealthStoreSubscriber, Sendable {
    private struct Link {
        weak var registry: HealthRegistry?
        var onPeerChange: (@Sendable (Int, CircuitBreaker.State, String) -> Void)?
    }

    let store: any HealthStore
    /// Each entry's identity; `nil` for an entry whose provider does not resolve (it is never shared).
    let identities: [ProviderIdentity?]
    let providerIdentities: [ProviderIdentity]
    private let indices: [ProviderIdentity: [Int]]
    /// How long each entry's probe lease lasts: its attempt timeout and a second, so a lease outlives the probe it
    /// allows; a grant not used within that time is dropped.
    let leaseDurations: [Duration]
    let maxProbes: Int
    let now: @Sendable () -> Duration
    private let link = Mutex(Link())

    init(store: any HealthStore, identities: [ProviderIdentity?], leaseDurations: [Duration], maxProbes: Int, now: @escaping @Sendable () -> Duration) {
        self.store = store
        self.identities = identities
        self.leaseDurations = leaseDurations
        self.maxProbes = max(1, maxProbes)
        self.now = now
        var indices: [ProviderIdentity: [Int]] = [:]
        var unique: [ProviderIdentity] = []
        for (index, identity) in identities.enumerated() {
            guard let identity else { continue }
            if indices[identity] == nil { unique.append(identity) }
            indices[identity, default: []].append(index)
        }
        self.indices = indices
        self.providerIdentities = unique
    }

    /// Connects the registry (weakly) and the chain's hook for changes learned from peers.
    func connect(_ registry: HealthRegistry, onPeerChange: @escaping @Sendable (Int, CircuitBreaker.State, String) -> Void) {
        link.locked { $0 = Link(registry: registry, onPeerChange: onPeerChange) }
        store.subscribe(self)
    }

    func publish(_ index: Int, _ change: HealthTransition.Change) {
        guard let identity = identities[index] else { return }
        store.publish(HealthTransition(provider: identity, change: change))
    }

    /// Asks the store for a probe lease for entry `index`: an ordinary one, or a forced one when `forcedPeriod` (the
    /// entry's recovery period) is given.
    func requestLease(_ index: Int, forcedPeriod: Duration? = nil) {
        guard let identity = identities[index] else {
            // Never shared: its probes are its own.
            probeLease(forIndex: index, granted: true, retryIn: nil)
            return
        }
        if let forcedPeriod {
            store.requestForcedProbeLease(for: identity, maxProbes: maxProbes, duration: leaseDurations[index], period: forcedPeriod)
        } else {
            store.requestProbeLease(for: identity, maxProbes: maxProbes, duration: leaseDurations[index])
        }
    }

    private func probeLease(forIndex index: Int, granted: Bool, retryIn: Duration?) {
        let registry = link.locked { $0.registry }
        registry?.leaseAnswer([index], granted: granted, retryIn: retryIn, now: now(), leaseDurations: leaseDurations)
    }

    func apply(_ update: HealthUpdate) {
        guard let targets = indices[update.provider] else { return }
        let (registry, hook) = link.locked { ($0.registry, $0.onPeerChange) }
        guard let registry else { return }
        let changes = registry.apply(update, to: targets, now: now())
        if let hook { for (index, state) in changes { hook(index, state, update.origin) } }
    }

    func probeLease(for provider: ProviderIdentity, granted: Bool, retryIn: Duration?) {
        guard let targets = indices[provider] else { return }
        let registry = link.locked { $0.registry }
        registry?.leaseAnswer(targets, granted: granted, retryIn: retryIn, now: now(), leaseDurations: leaseDurations)
    }
}
