/// The names of what a decoded request body holds below its top level that the provider-neutral request does not
/// carry (thinking blocks, `cache_control`, server tools, ...), each once and in the order met.
///
/// A hostile body could name thousands of distinct block types: the list keeps the first ``limit`` names, each
/// at most 64 characters long.
struct UnmappedContent {
    static let limit = 32

    private(set) var names: [String] = []

    mutating func note(_ name: String) {
        guard names.count < Self.limit else { return }
        let name = name.utf8.count > 64 ? String(name.prefix(64)) : name
        if !names.contains(name) { names.append(name) }
    }

    /// Notes `name` under `prefix` (`content.thinking`), for a name taken from the body.
    mutating func note(_ prefix: String, _ name: String) {
        note(prefix + "." + name.prefix(48))
    }
}

extension ReasoningEffort {
    /// The effort whose ``thinkingBudget`` is nearest to `budget` tokens (a tie goes to the smaller effort).
    static func nearest(toBudget budget: Int) -> ReasoningEffort {
        let efforts: [ReasoningEffort] = [.minimal, .low, .medium, .high]
        var best = efforts[0]
        var bestDistance = Int.max
        for effort in efforts {
            let target = effort.thinkingBudget ?? 0
            // Both are far inside Int's range once `budget` is clamped, so the difference cannot overflow.
            let distance = abs(min(max(budget, -1 << 40), 1 << 40) - target)
            if distance < bestDistance {
                best = effort
                bestDistance = distance
            }
        }
        return best
    }
}
