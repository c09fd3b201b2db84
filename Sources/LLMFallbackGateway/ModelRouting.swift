/// How the gateway finds the chain for the `model` a client sends.
///
/// Clients that send their own model names (Claude Code sends `claude-sonnet-4-5-20250929`; SDK code sends
/// `gpt-4o`) reach a chain by its name, by an alias, or by a pattern, with an optional default for anything else:
///
/// ```swift
/// configuration.modelRouting = ModelRouting(
///     aliases: ["claude": ["claude-sonnet-*", "claude-3-7-sonnet-latest"], "fast": ["claude-haiku-*"]],
///     defaultChain: "default"
/// )
/// ```
///
/// A chain's own name wins, then an exact alias, then the longest matching pattern (`*` matches any run of
/// characters), then the default chain; a model nothing matches is a `404` listing the chains.
public struct ModelRouting: Sendable, Hashable {
    /// Extra names for each chain, by chain name: exact names, and patterns with `*`.
    public var aliases: [String: [String]]
    /// The chain that serves any model nothing else matches; `nil` answers those with `404`.
    public var defaultChain: String?

    /// Creates model routing.
    public init(aliases: [String: [String]] = [:], defaultChain: String? = nil) {
        self.aliases = aliases
        self.defaultChain = defaultChain
    }

    /// The longest model name routed; longer ones are not matched against patterns (a client's bytes are bounded).
    static let longestModelName = 512

    /// Checks the routing against the chains' names.
    ///
    /// - Throws: ``GatewayConfigurationError`` when an alias is empty, names a chain that does not exist, is claimed
    ///   by two chains or is another chain's name, or when the default chain does not exist.
    func validate(chainNames: Set<String>) throws(GatewayConfigurationError) {
        var claimed: [String: String] = [:]
        for chain in aliases.keys.sorted() {
            guard chainNames.contains(chain) else {
                throw GatewayConfigurationError(.invalidValue, "aliases are given for '\(chain)', which is not a chain")
            }
            for alias in aliases[chain] ?? [] {
                guard !alias.isEmpty, alias.utf8.count <= Self.longestModelName else {
                    throw GatewayConfigurationError(.invalidValue, "chain '\(chain)' has an empty or overlong alias")
                }
                if let other = claimed[alias], other != chain {
                    throw GatewayConfigurationError(
                        .invalidValue, "the alias '\(alias)' is claimed by two chains, '\(other)' and '\(chain)'")
                }
                if chainNames.contains(alias) && alias != chain {
                    throw GatewayConfigurationError(.invalidValue, "the alias '\(alias)' of chain '\(chain)' is the name of another chain")
                }
                claimed[alias] = chain
            }
        }
        if let defaultChain, !chainNames.contains(defaultChain) {
            throw GatewayConfigurationError(.invalidValue, "the default chain '\(defaultChain)' is not a chain")
        }
    }
}

/// The compiled ``ModelRouting``: a lookup per request without allocation for exact names.
struct ModelRouter: Sendable {
    private let exact: [String: String]
    /// Patterns, the most specific first: longer patterns before shorter, then by text for a stable order.
    private let patterns: [(pattern: [UInt8], chain: String)]
    private let defaultChain: String?
    /// The exact names a client may use: chains and exact aliases, sorted (for `/v1/models`).
    let listedNames: [String]

    init(chainNames: [String], routing: ModelRouting) {
        var exact: [String: String] = [:]
        var patterns: [(pattern: [UInt8], chain: String)] = []
        for name in chainNames { exact[name] = name }
        for (chain, aliases) in routing.aliases {
            for alias in aliases {
                if alias.contains("*") {
                    patterns.append((Array(alias.utf8), chain))
                } else if exact[alias] == nil {
                    exact[alias] = chain
                }
            }
        }
        patterns.sort { $0.pattern.count != $1.pattern.count ? $0.pattern.count > $1.pattern.count : $0.pattern.lexicographicallyPrecedes($1.pattern) }
        self.exact = exact
        self.patterns = patterns
        self.defaultChain = routing.defaultChain
        self.listedNames = exact.keys.sorted()
    }

    /// The chain serving `model`, or `nil`.
    func chain(for model: String) -> String? {
        if let chain = exact[model] { return chain }
        if !patterns.isEmpty, model.utf8.count <= ModelRouting.longestModelName {
            let name = Array(model.utf8)
            for (pattern, chain) in patterns where Self.matches(name, pattern) { return chain }
        }
        return defaultChain
    }

    /// Whether `name` matches `pattern`, where `*` stands for any run of bytes: the classic two-pointer glob, which
    /// backtracks only to the last star (time proportional to the product of the lengths at worst, both bounded).
    static func matches(_ name: [UInt8], _ pattern: [UInt8]) -> Bool {
        var n = 0
        var p = 0
        var star = -1
        var resume = 0
        while n < name.count {
            if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = n
                p += 1
            } else if p < pattern.count && pattern[p] == name[n] {
                p += 1
                n += 1
            } else if star >= 0 {
                p = star + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
