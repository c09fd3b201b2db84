/// Total conversions for numbers that come from outside (a provider's headers and bodies, a client, a config
/// file): nothing here traps, whatever the input.
///
/// Swift's `Int(_: Double)`, `Duration.milliseconds(_: Double)` and `+` trap on values out of range. A gateway
/// must never die on a header, so every figure derived from external data goes through these instead.
enum Bounds {
    /// The longest duration any figure derived from outside may reach (about 100 years): far past any real
    /// timeout or `Retry-After`, far short of `Duration`'s and `Int64`'s limits.
    static let longestDuration: Duration = .seconds(100 * 365 * 86_400)
}

extension Duration {
    /// A duration of `milliseconds`, total: NaN and negative values are zero, values past `limit` (and
    /// infinity) are `limit`.
    static func clampedMilliseconds(_ milliseconds: Double, limit: Duration = Bounds.longestDuration) -> Duration {
        guard milliseconds > 0 else { return .zero }  // also NaN
        let limitMs = limit.milliseconds
        if milliseconds >= limitMs { return limit }
        return .milliseconds(milliseconds)
    }

    /// `self`, clamped to `0...limit`.
    func clamped(to limit: Duration) -> Duration {
        if self < .zero { return .zero }
        return self > limit ? limit : self
    }
}

extension Int {
    /// `self + other`, saturating at `Int.max` and `Int.min` instead of trapping.
    func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        if overflow { return other > 0 ? .max : .min }
        return sum
    }

    /// The nearest `Int` to `value`, total: NaN is zero, values outside `Int`'s range saturate.
    init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9.2e18 {
            self = .max
        } else if value <= -9.2e18 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}
