import Foundation
import LLMFallback

/// The demo's output: a scrolling log with a live health table pinned below it on a terminal (ANSI redraw), or
/// plain lines with a table snapshot after each act when the output is not a terminal.
final class DemoScreen {
    /// Whether colour and live redraw are used.
    let live: Bool
    /// Styling (plain when not ``live``).
    let style: Style
    /// When the demo started; log lines show the time since.
    let started = ContinuousClock.now

    /// The title of the table: the chain it shows.
    var tableTitle = ""
    /// The health rows the table shows (the current chain's).
    var health: () -> [ProviderHealth] = { [] }
    /// A line under the table (a countdown), live mode only.
    var status: String?

    private var drawnLines = 0
    private var pinned = true

    /// Creates a screen.
    init(live: Bool) {
        self.live = live
        self.style = Style(enabled: live)
    }

    /// Prints one log line (with the time since the start), keeping the live table below it.
    func log(_ text: String) {
        let elapsed = ContinuousClock.now - started
        let stamp = String(format: "%5.1fs", elapsed.milliseconds / 1000)
        emit(style.dim(stamp) + "  " + text)
    }

    /// Prints a line without a time stamp.
    func emit(_ text: String) {
        if live && pinned {
            Console.out(clearRegion() + text + "\n" + region())
        } else {
            Console.outLine(text)
        }
    }

    /// Redraws the live table (does nothing in plain mode).
    func redraw() {
        guard live && pinned else { return }
        Console.out(clearRegion() + region())
    }

    /// Prints the table once, as part of the log (plain mode), or just redraws it (live mode).
    func snapshot() {
        if live {
            redraw()
        } else {
            for line in tableLines() { Console.outLine("    " + line) }
        }
    }

    /// Removes the live table; further output is plain lines.
    func finishLiveRegion() {
        guard live && pinned else { return }
        Console.out(clearRegion())
        drawnLines = 0
        pinned = false
    }

    /// The table's lines.
    func tableLines() -> [String] {
        var table = TextTable(headers: ["PROVIDER", "FORMAT", "BREAKER", "LATENCY", "SERVED", "FAILED", "NOTE"])
        for entry in health() {
            table.rows.append([
                entry.name,
                Self.format(ofKind: entry.kind),
                breaker(entry),
                entry.latency.map { String(format: "%.0fms", $0.milliseconds) } ?? "-",
                "\(entry.successes)",
                entry.failures == 0 ? "0" : style.red("\(entry.failures)"),
                note(entry),
            ])
        }
        let lines = table.render(style: style)
        return tableTitle.isEmpty ? lines : [style.bold(tableTitle)] + lines
    }

    private func breaker(_ entry: ProviderHealth) -> String {
        switch entry.state {
        case .closed: return style.green("closed")
        case .halfOpen: return style.yellow("half-open")
        case .open: return style.red("open")
        }
    }

    private func note(_ entry: ProviderHealth) -> String {
        if entry.state == .open, let reopens = entry.reopensIn {
            return reopens > .zero ? "probe in \(Self.seconds(reopens))" : "probe due"
        }
        if let remaining = entry.retryAfterRemaining, remaining > .zero {
            return "retry-after: \(Self.seconds(remaining)) left"
        }
        return "-"
    }

    private func region() -> String {
        guard !health().isEmpty else {
            drawnLines = 0
            return ""
        }
        var lines = [""] + tableLines()
        if let status { lines.append(style.cyan(status)) }
        drawnLines = lines.count
        // Auto-wrap off while drawing, so a narrow terminal clips the table instead of wrapping it (which
        // would break the count of lines to move up on the next redraw).
        return "\u{1B}[?7l" + lines.joined(separator: "\n") + "\n\u{1B}[?7h"
    }

    private func clearRegion() -> String {
        guard drawnLines > 0 else { return "" }
        // Up to the region's first line, then erase to the end of the screen.
        return "\u{1B}[\(drawnLines)F\u{1B}[J"
    }

    /// `OpenAI`, `Anthropic`, `Gemini` for the demo's kinds.
    static func format(ofKind kind: String) -> String {
        let format = ProviderKind.named(kind)?.wireFormat
        if format == .anthropic { return "Anthropic" }
        if format == .gemini { return "Gemini" }
        if format == .azureOpenAI { return "Azure" }
        return "OpenAI"
    }

    /// Seconds with one decimal: `1.4s`.
    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1fs", max(0, duration.milliseconds) / 1000)
    }
}
