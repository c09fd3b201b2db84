import Foundation

/// How a chain orders its providers for each request. Failover always continues down the rest of the order.
///
/// A struct with static members rather than an enum, so strategies can be added without breaking anybody.
public struct RoutingStrategy: Hashable, Sendable, CustomStringConvertible {
    enum Base: Hashable, Sendable {
        case ordered
        case latency(tolerance: Double)
        case weighted
        case roundRobin
    }
    let base: Base

    /// The chain's order (the default).
    public static let ordered = RoutingStrategy(base: .ordered)
    /// The fastest healthy provider first; providers within 20% of the fastest share the load, providers with
    /// no samples yet are tried so they get measured.
    public static let latency = RoutingStrategy(base: .latency(tolerance: 0.2))
    /// Spread by each provider's ``Provider/weight`` (weighted random).
    public static let weighted = RoutingStrategy(base: .weighted)
    /// Rotate the first choice across providers.
    public static let roundRobin = RoutingStrategy(base: .roundRobin)

    /// Latency routing with a tolerance band: providers within `tolerance` (0.2 = 20%) of the fastest share
    /// the load.
    public static func latency(tolerance: Double) -> RoutingStrategy {
        RoutingStrategy(base: .latency(tolerance: max(0, tolerance)))
    }

    /// The name used in configuration files: `ordered`, `latency`, `weighted`, `round_robin`.
    public var description: String {
        switch base {
        case .ordered: return "ordered"
        case .latency: return "latency"
        case .weighted: return "weighted"
        case .roundRobin: return "round_robin"
        }
    }

    /// The strategy named `name` in a configuration file.
    public init?(name: String) {
        switch name.lowercased().replacingOccurrences(of: "-", with: "_") {
        case "ordered", "priority", "fallback": self = .ordered
        case "latency", "fastest", "latency_based": self = .latency
        case "weighted", "weight": self = .weighted
        case "round_robin", "roundrobin": self = .roundRobin
        default: return nil
        }
    }

    private init(base: Base) { self.base = base }
}

/// A deterministic generator (SplitMix64) for seeded routing and jitter in tests.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Either the system generator or a seeded one.
struct ChainRandom: RandomNumberGenerator, Sendable {
    var seeded: SeededGenerator?
    mutating func next() -> UInt64 {
        if seeded != nil { return seeded!.next() }
        var system = SystemRandomNumberGenerator()
        return system.next()
    }
}

struct Router {
    /// Orders candidate indices for one request.
    static func order(
        _ candidates: [Int],
        strategy: RoutingStrategy,
        weights: [Double],
        latencies: [Double?],
        counter: Int,
        random: inout ChainRandom
    ) -> [Int] {
        guard candidates.count > 1 else { return candidates }
        switch strategy.base {
        case .ordered:
            return candidates
        case .roundRobin:
            let shift = counter % candidates.count
            return Array(candidates[shift...] + candidates[..<shift])
        case .weighted:
            var remaining = candidates
            var result: [Int] = []
            result.reserveCapacity(candidates.count)
            while !remaining.isEmpty {
                let total = remaining.reduce(0.0) { $0 + max(0, weights[$1]) }
                var pick = 0
                if total > 0 {
                    var target = Double.random(in: 0..<total, using: &random)
                    for (offset, index) in remaining.enumerated() {
                        target -= max(0, weights[index])
                        if target < 0 {
                            pick = offset
                            break
                        }
                        pick = offset
                    }
                }
                result.append(remaining.remove(at: pick))
            }
            return result
        case .latency(let tolerance):
            // Unmeasured providers first (in chain order) so they get measured; then by latency.
            let unmeasured = candidates.filter { latencies[$0] == nil }
            let measured = candidates.filter { latencies[$0] != nil }.sorted { latencies[$0]! < latencies[$1]! }
            guard let fastest = measured.first.flatMap({ latencies[$0] }) else { return unmeasured }
            let band = measured.filter { latencies[$0]! <= fastest * (1 + tolerance) }
            var ordered = measured
            if band.count > 1 {
                let shift = Int.random(in: 0..<band.count, using: &random)
                let rotated = Array(band[shift...] + band[..<shift])
                ordered = rotated + measured.dropFirst(band.count)
            }
            return unmeasured + ordered
        }
    }
}
