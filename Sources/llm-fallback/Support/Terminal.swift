import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Unbuffered writes to standard output and standard error, so streamed text appears as it arrives and
/// the two streams interleave in order.
enum Console {
    /// Writes `text` to standard output as is.
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `text` and a newline to standard output.
    static func outLine(_ text: String = "") {
        out(text + "\n")
    }

    /// Writes `text` and a newline to standard error.
    static func errLine(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Whether standard output is a terminal.
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Whether standard input is a terminal.
    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    /// Whether colour and cursor movement should be used on standard output: a terminal, `NO_COLOR` unset, and a
    /// `TERM` other than `dumb`.
    static func wantsANSI(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard stdoutIsTerminal else { return false }
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return false }
        return environment["TERM"] != "dumb"
    }
}

/// ANSI styling that turns into plain text when disabled.
struct Style: Sendable {
    /// Whether escape sequences are emitted.
    let enabled: Bool

    /// Bold text.
    func bold(_ text: String) -> String { wrap(text, "1") }
    /// Dimmed text.
    func dim(_ text: String) -> String { wrap(text, "2") }
    /// Red text.
    func red(_ text: String) -> String { wrap(text, "31") }
    /// Green text.
    func green(_ text: String) -> String { wrap(text, "32") }
    /// Yellow text.
    func yellow(_ text: String) -> String { wrap(text, "33") }
    /// Cyan text.
    func cyan(_ text: String) -> String { wrap(text, "36") }

    private func wrap(_ text: String, _ code: String) -> String {
        enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}

/// A plain-text table with aligned columns; cells may carry ANSI styling (it is not counted in the width).
struct TextTable {
    /// The column titles.
    var headers: [String]
    /// The rows; each as many cells as there are headers.
    var rows: [[String]] = []

    /// The table as lines: a header, then one line per row.
    func render(style: Style = Style(enabled: false)) -> [String] {
        var widths = headers.map(Self.visibleWidth)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], Self.visibleWidth(cell))
            }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (index, cell) in cells.enumerated() {
                let isLast = index == cells.count - 1
                let padding = isLast ? 0 : max(0, widths[index] - Self.visibleWidth(cell))
                parts.append(cell + String(repeating: " ", count: padding))
            }
            return parts.joined(separator: "  ")
        }
        return [style.bold(line(headers))] + rows.map(line)
    }

    /// The width of `text` without escape sequences.
    static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for scalar in text.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
            } else if scalar == "\u{1B}" {
                inEscape = true
            } else {
                width += 1
            }
        }
        return width
    }
}
