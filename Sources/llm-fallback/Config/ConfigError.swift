/// One problem in a configuration file: where it is (file, line, key path) and what is wrong.
///
/// Its description reads like a compiler diagnostic, so editors and terminals can jump to it:
///
/// ```
/// llm-fallback.yaml:12: chains.default.providers[1].timeout: invalid duration 'abc' (expected e.g. 30s, 250ms)
/// ```
struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in, as the user named it.
    var file: String
    /// The 1-based line of the offending key or value, when known.
    var line: Int?
    /// The key path of the offending value, such as `chains.default.providers[1].timeout`; empty for the file.
    var keyPath: String
    /// What is wrong.
    var message: String

    /// Creates a problem report.
    init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    /// `FILE:LINE: KEY: MESSAGE`.
    var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if !keyPath.isEmpty { text += "\(keyPath): " }
        return text + message
    }
}

/// Every problem found in one configuration file, in line order.
struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// The problems, in line order.
    var errors: [ConfigError]

    /// Creates the list; problems are sorted by line.
    init(_ errors: [ConfigError]) {
        self.errors = errors.sorted { ($0.line ?? 0) < ($1.line ?? 0) }
    }

    /// One problem per line.
    var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

/// A location in a configuration file: a key path, built as the loader descends.
struct ConfigPath: Sendable, Hashable, CustomStringConvertible {
    /// The path as written in messages, such as `chains.default.providers[1]`.
    let description: String

    /// The document's root.
    static let root = ConfigPath(description: "")

    /// The path of the member `key` of this mapping.
    func key(_ key: String) -> ConfigPath {
        let needsQuotes = key.isEmpty || key.contains(where: { $0 == "." || $0 == " " || $0 == "[" })
        let part = needsQuotes ? "\"\(key)\"" : key
        return ConfigPath(description: description.isEmpty ? part : "\(description).\(part)")
    }

    /// The path of element `index` (0-based) of this list.
    func index(_ index: Int) -> ConfigPath {
        ConfigPath(description: "\(description)[\(index)]")
    }
}
