import Foundation
import LLMFallback

/// Durations as configuration files write them: `30s`, `250ms`, `2m`, `1.5s`, `1m30s`, `1h`.
enum DurationText {
    /// Parses a duration: one or more `NUMBER UNIT` pairs (units `ns`, `us`, `ms`, `s`, `m`, `h`), or `0`.
    ///
    /// ```swift
    /// DurationText.parse("1.5s")   // .milliseconds(1500)
    /// DurationText.parse("abc")    // nil
    /// ```
    ///
    /// - Parameter text: The text, surrounding spaces allowed.
    /// - Returns: The duration, or `nil` when the text is not a duration.
    static func parse(_ text: String) -> Duration? {
        guard case .duration(let duration) = read(text) else { return nil }
        return duration
    }

    /// What ``read(_:)`` found.
    enum Reading: Equatable {
        /// A duration, at most ``longest``.
        case duration(Duration)
        /// A well-formed duration longer than ``longest``.
        case tooLong
        /// Not a duration.
        case invalid
    }

    /// The longest duration a configuration may give: a day. No timeout, pause or grace period needs more, and a
    /// longer one is a typo (or an attempt to make a figure overflow).
    static let longest = Duration.seconds(86_400)

    /// Parses a duration as ``parse(_:)`` does, telling an absurdly long one (``longest`` and beyond) from text that
    /// is not a duration. Never traps: parts are summed in nanoseconds as `Double` and judged before any conversion.
    static func read(_ text: String) -> Reading {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text == "0" { return .duration(.zero) }
        var rest = Substring(text)
        var nanosecondsTotal = 0.0
        var parts = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != ".",
                let value = Double(number)
            else { return .invalid }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            let nanosecondsPerUnit: Double
            switch unit {
            case "ns": nanosecondsPerUnit = 1
            case "us", "µs": nanosecondsPerUnit = 1e3
            case "ms": nanosecondsPerUnit = 1e6
            case "s": nanosecondsPerUnit = 1e9
            case "m": nanosecondsPerUnit = 60e9
            case "h": nanosecondsPerUnit = 3600e9
            default: return .invalid
            }
            nanosecondsTotal += value * nanosecondsPerUnit
            parts += 1
        }
        guard parts > 0 else { return .invalid }
        let longestNanoseconds = Double(longest.components.seconds) * 1e9
        guard nanosecondsTotal.isFinite, nanosecondsTotal <= longestNanoseconds else { return .tooLong }
        return .duration(.nanoseconds(Int64(nanosecondsTotal.rounded())))
    }

    /// A short human form: `250ms`, `1.5s`, `2m`.
    static func format(_ duration: Duration) -> String {
        // Clamped before any conversion: `Duration.components` traps past Int64.max seconds, `Int(_:)` past Int.max.
        if duration >= .seconds(Int64(1) << 40) { return "\(Int64(1) << 40)s+" }
        let ms = duration.milliseconds
        if ms >= 3_600_000, ms.truncatingRemainder(dividingBy: 3_600_000) == 0 { return "\(Int(ms / 3_600_000))h" }
        if ms >= 60_000, ms.truncatingRemainder(dividingBy: 60_000) == 0 { return "\(Int(ms / 60_000))m" }
        if ms >= 1000 {
            let seconds = ms / 1000
            return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
        }
        return ms == ms.rounded() ? "\(Int(ms))ms" : String(format: "%.1fms", ms)
    }
}

/// Byte sizes as configuration files write them: `1048576`, `512KB`, `4MB`, `1MiB`.
enum ByteSizeText {
    /// Parses a size; `KB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB` powers of 1024.
    static func parse(_ text: String) -> Int? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !digits.isEmpty, let value = Double(digits) else { return nil }
        let unit = text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let multiplier: Double
        switch unit {
        case "", "b": multiplier = 1
        case "kb", "k": multiplier = 1e3
        case "mb", "m": multiplier = 1e6
        case "gb", "g": multiplier = 1e9
        case "kib": multiplier = 1024
        case "mib": multiplier = 1024 * 1024
        case "gib": multiplier = 1024 * 1024 * 1024
        default: return nil
        }
        let bytes = value * multiplier
        guard bytes.isFinite, bytes >= 0, bytes < 1e15 else { return nil }
        return Int(bytes.rounded())
    }
}

/// `${VAR}` expansion of configuration values.
enum VariableExpansion {
    /// The outcome of expanding one value.
    struct Result: Sendable, Equatable {
        /// The expanded text.
        var text: String
        /// Variables referenced but not set (and without a `:-default`).
        var missing: [String]
        /// Syntax problems, such as an unterminated `${`.
        var problems: [String]
        /// Variables referenced as `${VAR}` that are set to the empty string.
        var empty: [String] = []
    }

    /// Expands `${VAR}` (and `${VAR:-default}`) from `environment`; `$$` stands for a literal `$`.
    ///
    /// A variable set to the empty string counts as set for `${VAR}` and as unset for `${VAR:-default}`, as in
    /// the shell.
    ///
    /// - Parameters:
    ///   - text: The value as written in the file.
    ///   - environment: Where variables are read from.
    /// - Returns: The text with every reference replaced, and whatever could not be replaced.
    static func expand(_ text: String, environment: [String: String]) -> Result {
        guard text.contains("$") else { return Result(text: text, missing: [], problems: []) }
        var output = ""
        var missing: [String] = []
        var problems: [String] = []
        var empty: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard character == "$", next < text.endIndex else {
                output.append(character)
                index = next
                continue
            }
            if text[next] == "$" {
                output.append("$")
                index = text.index(after: next)
            } else if text[next] == "{" {
                let start = text.index(after: next)
                guard let end = text[start...].firstIndex(of: "}") else {
                    problems.append("unterminated '${' (write '$$' for a literal '$')")
                    output += text[index...]
                    break
                }
                let reference = String(text[start..<end])
                var name = reference
                var fallback: String?
                if let separator = reference.range(of: ":-") {
                    name = String(reference[..<separator.lowerBound])
                    fallback = String(reference[separator.upperBound...])
                }
                if !isValidName(name) {
                    problems.append("invalid variable reference '${\(reference)}'")
                } else if let fallback {
                    let value = environment[name] ?? ""
                    output += value.isEmpty ? fallback : value
                } else if let value = environment[name] {
                    output += value
                    if value.isEmpty { empty.append(name) }
                } else {
                    missing.append(name)
                }
                index = text.index(after: end)
            } else {
                output.append(character)
                index = next
            }
        }
        return Result(text: output, missing: missing, problems: problems, empty: empty)
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else {
            return false
        }
        return name.unicodeScalars.allSatisfy {
            $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
        }
    }
}
