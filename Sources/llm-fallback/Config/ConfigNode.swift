import Foundation
import Yams

/// Collects problems while a file is read, so that one pass reports every one of them.
final class ConfigDiagnostics {
    /// The file being read, as the user named it.
    let file: String
    /// Problems that make the file unusable.
    private(set) var errors: [ConfigError] = []
    /// Problems worth knowing that do not stop the file from loading (a key variable not set yet).
    private(set) var warnings: [ConfigError] = []

    /// Creates an empty collector for `file`.
    init(file: String) {
        self.file = file
    }

    /// Records an error at `path`, `line`.
    func error(_ message: String, path: ConfigPath, line: Int?) {
        errors.append(ConfigError(file: file, line: line, keyPath: path.description, message: message))
    }

    /// Records a warning at `path`, `line`.
    func warning(_ message: String, path: ConfigPath, line: Int?) {
        warnings.append(ConfigError(file: file, line: line, keyPath: path.description, message: message))
    }
}

/// A value of the YAML document together with where it is: its key path and line. Typed accessors report
/// every problem to the shared ``ConfigDiagnostics`` and return `nil`, so the loader carries on and finds the next.
struct ConfigNode {
    /// The YAML node.
    let node: Node
    /// Its key path.
    let path: ConfigPath
    /// Where problems go.
    let diagnostics: ConfigDiagnostics
    /// Where `${VAR}` references are looked up.
    let environment: [String: String]

    /// The 1-based line of the node.
    var line: Int? { node.mark?.line }

    /// Reports a problem with this value.
    func error(_ message: String) {
        diagnostics.error(message, path: path, line: line)
    }

    /// Reports a warning about this value.
    func warning(_ message: String) {
        diagnostics.warning(message, path: path, line: line)
    }

    /// Whether the value is YAML null (`~`, `null`, or nothing at all after the colon).
    var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The value as a short phrase for messages: `a mapping`, `a list`, `'abc'`.
    var summary: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            let text = scalar.string.count > 40 ? scalar.string.prefix(37) + "..." : Substring(scalar.string)
            return "'\(text)'"
        }
    }

    /// The child at `key`, with its path.
    func child(_ node: Node, key: String) -> ConfigNode {
        ConfigNode(node: node, path: path.key(key), diagnostics: diagnostics, environment: environment)
    }

    /// The element at `index`, with its path.
    func element(_ node: Node, index: Int) -> ConfigNode {
        ConfigNode(node: node, path: path.index(index), diagnostics: diagnostics, environment: environment)
    }

    // MARK: Containers

    /// The value as a mapping whose keys are all among `allowed`; unknown keys are reported (with a suggestion),
    /// and so is a value of another shape.
    ///
    /// - Parameter allowed: The keys this mapping may have; `nil` allows any key (headers, chain names).
    func mapping(allowed: [String]?) -> ConfigMapping? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping, got \(summary)")
            return nil
        }
        var entries: [ConfigMapping.Entry] = []
        var seen = Set<String>()
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                diagnostics.error("keys must be plain text", path: path, line: keyNode.mark?.line)
                continue
            }
            let key = keyScalar.string
            guard seen.insert(key).inserted else {
                diagnostics.error("duplicate key", path: path.key(key), line: keyNode.mark?.line)
                continue
            }
            if let allowed, !allowed.contains(key) {
                var message = "unknown key '\(key)'"
                if let suggestion = Self.closest(to: key, in: allowed) {
                    message += " (did you mean '\(suggestion)'?)"
                } else {
                    message += " (expected one of: \(allowed.joined(separator: ", ")))"
                }
                diagnostics.error(message, path: path.key(key), line: keyNode.mark?.line)
                continue
            }
            entries.append(
                ConfigMapping.Entry(key: key, keyLine: keyNode.mark?.line, value: child(valueNode, key: key))
            )
        }
        return ConfigMapping(owner: self, entries: entries)
    }

    /// The value as a list; any other shape is reported.
    func list() -> [ConfigNode]? {
        guard case .sequence(let sequence) = node else {
            error("expected a list, got \(summary)")
            return nil
        }
        return sequence.enumerated().map { element($1, index: $0) }
    }

    // MARK: Scalars

    /// The value's text with `${VAR}` references expanded; a container or a missing variable is reported.
    func string() -> String? {
        guard case .scalar(let scalar) = node else {
            error("expected a string, got \(summary)")
            return nil
        }
        let expanded = VariableExpansion.expand(scalar.string, environment: environment)
        for name in expanded.missing {
            error("environment variable \(name) is not set (referenced as ${\(name)})")
        }
        for problem in expanded.problems {
            error(problem)
        }
        guard expanded.missing.isEmpty, expanded.problems.isEmpty else { return nil }
        return expanded.text
    }

    /// The value's text, expanded, which must not be empty: a key or a URL, where an empty value (often a
    /// `${VAR}` set to the empty string) would silently mean something else. The message never shows the value.
    ///
    /// - Parameter what: The value's name in the message, such as `the API key`.
    func nonEmptyString(_ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error("expected a string, got \(summary)")
            return nil
        }
        guard let text = string() else { return nil }
        guard text.isEmpty else { return text }
        let empty = VariableExpansion.expand(scalar.string, environment: environment).empty
        if empty.isEmpty {
            error("\(what) is empty")
        } else {
            let names = empty.map { "${\($0)}" }.joined(separator: ", ")
            error("\(what) is empty: \(names) is set to the empty string")
        }
        return nil
    }

    /// The value as an integer within `range`.
    func integer(in range: ClosedRange<Int>) -> Int? {
        guard let text = scalarText(expecting: "an integer") else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed) else {
            let digits = trimmed.drop { $0 == "-" || $0 == "+" }
            if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
                error(Self.rangeMessage(range, got: trimmed))
            } else {
                error("expected an integer, got '\(text)'")
            }
            return nil
        }
        guard range.contains(value) else {
            error(Self.rangeMessage(range, got: "\(value)"))
            return nil
        }
        return value
    }

    /// The value as a number within `range`.
    func number(in range: ClosedRange<Double>) -> Double? {
        guard let text = scalarText(expecting: "a number") else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            error("expected a number, got '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            error("must be between \(range.lowerBound) and \(range.upperBound), got \(text)")
            return nil
        }
        return value
    }

    /// The value as a Boolean (`true`/`false`, `yes`/`no`, `on`/`off`).
    func bool() -> Bool? {
        guard let text = scalarText(expecting: "true or false") else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error("expected true or false, got '\(text)'")
            return nil
        }
    }

    /// The value as a duration (`30s`, `250ms`, `2m`, `1.5s`).
    ///
    /// - Parameter allowZero: Whether `0` is acceptable.
    func duration(allowZero: Bool = false) -> Duration? {
        guard let text = scalarText(expecting: "a duration (e.g. 30s, 250ms)") else { return nil }
        let value: Duration
        switch DurationText.read(text) {
        case .duration(let duration):
            value = duration
        case .tooLong:
            error("duration '\(text)' is too long (at most \(DurationText.format(DurationText.longest)))")
            return nil
        case .invalid:
            error("invalid duration '\(text)' (expected e.g. 30s, 250ms)")
            return nil
        }
        if value == .zero && !allowZero {
            error("duration must be greater than zero, got '\(text)'")
            return nil
        }
        return value
    }

    /// The value as a byte size (`1048576`, `512KB`, `4MB`, `1MiB`).
    func byteSize() -> Int? {
        guard let text = scalarText(expecting: "a size (e.g. 4MB)") else { return nil }
        guard let value = ByteSizeText.parse(text), value > 0 else {
            error("invalid size '\(text)' (expected bytes or e.g. 512KB, 4MB, 1MiB)")
            return nil
        }
        return value
    }

    /// One of `choices` (case-insensitive).
    func choice(_ choices: [String]) -> String? {
        guard let text = scalarText(expecting: "one of \(choices.joined(separator: ", "))") else { return nil }
        guard let match = choices.first(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) else {
            error("invalid value '\(text)' (expected one of: \(choices.joined(separator: ", ")))")
            return nil
        }
        return match
    }

    private func scalarText(expecting expected: String) -> String? {
        guard case .scalar = node else {
            error("expected \(expected), got \(summary)")
            return nil
        }
        return string()
    }

    private static func rangeMessage(_ range: ClosedRange<Int>, got: String) -> String {
        if range.upperBound == Int.max { return "must be at least \(range.lowerBound), got \(got)" }
        return "must be between \(range.lowerBound) and \(range.upperBound), got \(got)"
    }

    /// The allowed key closest to a misspelt one, when it is close enough to be a likely typo.
    static func closest(to key: String, in allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(key.lowercased(), $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, min(3, key.count / 3)) else { return nil }
        return best.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// A mapping of the document, its keys already checked against those allowed.
struct ConfigMapping {
    /// One key and its value.
    struct Entry {
        /// The key.
        var key: String
        /// The key's line.
        var keyLine: Int?
        /// The value.
        var value: ConfigNode
    }

    /// The mapping itself.
    let owner: ConfigNode
    /// Its allowed entries, in file order.
    let entries: [Entry]

    /// The value at `key`, or `nil` when the key is absent or its value is null.
    subscript(key: String) -> ConfigNode? {
        guard let entry = entries.first(where: { $0.key == key }), !entry.value.isNull else { return nil }
        return entry.value
    }

    /// The value at `key`; reports a missing required key at the mapping's line.
    func required(_ key: String) -> ConfigNode? {
        if let value = self[key] { return value }
        owner.diagnostics.error("missing required key '\(key)'", path: owner.path.key(key), line: owner.line)
        return nil
    }
}
