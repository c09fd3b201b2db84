/// Checks `Authorization: Bearer <key>`, or `x-api-key: <key>` as Anthropic's clients send it, against the
/// configured keys in constant time.
///
/// Every configured key is compared, every byte of it, whatever matched before: the time taken depends on neither
/// which key matched nor how much of a wrong key was right.
struct APIKeyAuthenticator: Sendable {
    enum Verdict {
        case allowed, missing, refused
    }

    private let keys: [[UInt8]]

    /// Creates an authenticator over `keys`; none turns authentication off.
    ///
    /// - Throws: ``GatewayConfigurationError`` for an empty key: left out, it would turn authentication off
    ///   when it was the only one, so it is refused rather than dropped.
    init(keys: [String]) throws(GatewayConfigurationError) {
        if let index = keys.firstIndex(where: \.isEmpty) {
            throw GatewayConfigurationError(
                .emptyAPIKey,
                "apiKeys[\(index)] is empty: an empty key would turn authentication off; remove it or set it"
            )
        }
        self.keys = keys.map { Array($0.utf8) }
    }

    /// Whether any key is configured.
    var isEnabled: Bool { !keys.isEmpty }

    func check(authorization: String?) -> Verdict {
        guard let authorization else { return .missing }
        let scheme = "bearer "
        let utf8 = authorization.utf8
        guard utf8.count > scheme.utf8.count,
            utf8.prefix(scheme.utf8.count).elementsEqual(scheme.utf8, by: { Self.lowercase($0) == $1 })
        else {
            return .refused
        }
        var presented = Substring(authorization).utf8.dropFirst(scheme.utf8.count)
        while presented.first == UInt8(ascii: " ") { presented = presented.dropFirst() }
        var matched: UInt8 = 0
        for key in keys {
            matched |= Self.constantTimeEquals(key, presented)
        }
        return matched == 1 ? .allowed : .refused
    }

    /// Checks a key sent bare, as Anthropic's clients send it (`x-api-key: <key>`).
    func check(apiKey: String?) -> Verdict {
        guard let apiKey else { return .missing }
        var presented = Substring(apiKey).utf8[...]
        while presented.first == UInt8(ascii: " ") { presented = presented.dropFirst() }
        guard !presented.isEmpty else { return .refused }
        var matched: UInt8 = 0
        for key in keys {
            matched |= Self.constantTimeEquals(key, Substring(presented).utf8)
        }
        return matched == 1 ? .allowed : .refused
    }

    /// 1 when equal, 0 otherwise; the time depends only on the lengths.
    static func constantTimeEquals(_ key: [UInt8], _ presented: Substring.UTF8View) -> UInt8 {
        var difference = UInt(bitPattern: key.count ^ presented.count)
        var keyIndex = 0
        var presentedIndex = presented.startIndex
        // Walk the presented value in full, comparing against the key cyclically, so a short guess costs as much
        // as a long one.
        let count = Swift.max(key.count, presented.count)
        for _ in 0..<count {
            let left = key.isEmpty ? 0 : key[keyIndex]
            let right = presentedIndex < presented.endIndex ? presented[presentedIndex] : 0
            difference |= UInt(left ^ right)
            keyIndex = keyIndex + 1 == key.count ? 0 : keyIndex + 1
            if presentedIndex < presented.endIndex { presentedIndex = presented.index(after: presentedIndex) }
        }
        return difference == 0 ? 1 : 0
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}

extension APIKeyAuthenticator: CustomStringConvertible, CustomReflectable {
    /// The number of keys, never the keys.
    var description: String { "APIKeyAuthenticator(\(keys.count) keys)" }

    var customMirror: Mirror { Mirror(self, children: ["keys": "<\(keys.count) redacted>"], displayStyle: .struct) }
}
