import Foundation
import Logging

/// Loggers for the command: silent by default, or one line per attempt and failover on standard error with
/// `--verbose`.
enum CommandLogging {
    /// A logger that drops everything (the library's own messages would otherwise go to standard output).
    static var silent: Logger {
        Logger(label: "llm-fallback") { _ in SwiftLogNoOpLogHandler() }
    }

    /// A logger that writes the chain's attempts (debug), failovers and breaker changes to standard error.
    static var verbose: Logger {
        var logger = Logger(label: "llm-fallback") { _ in VerboseLogHandler() }
        logger.logLevel = .debug
        return logger
    }

    /// ``verbose`` when `enabled`, else ``silent``.
    static func logger(verbose enabled: Bool) -> Logger {
        enabled ? verbose : silent
    }
}

/// Writes the chain's log messages to standard error as short, readable lines:
///
/// ```
/// attempt openai/gpt-4o #1: server_error (HTTP 500) in 3.1ms
/// failover: openai/gpt-4o -> anthropic/claude-3-5-haiku-latest (server_error, HTTP 500)
/// circuit breaker open: openai/gpt-4o
/// ```
///
/// The chain never puts keys in its messages; this handler adds nothing but what it is given.
struct VerboseLogHandler: LogHandler {
    /// Metadata added to every line.
    var metadata: Logger.Metadata = [:]
    /// The lowest level written.
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line for `event` on standard error.
    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        func field(_ key: String) -> String? {
            guard let value = fields[key] else { return nil }
            let text = "\(value)"
            return text == "-" ? nil : text
        }
        let message = event.message.description
        let line: String
        switch message {
        case "attempt finished":
            var text = "attempt \(field("provider") ?? "?") #\(field("attempt") ?? "?"): \(field("outcome") ?? "?")"
            if let status = field("status") { text += " (HTTP \(status))" }
            if let duration = field("duration_ms") { text += " in \(duration)ms" }
            line = text
        case "failing over":
            var reason = field("class") ?? "error"
            if let status = field("status") { reason += ", HTTP \(status)" }
            line = "failover: \(field("from") ?? "?") -> \(field("to") ?? "?") (\(reason))"
        case "all providers failed":
            // The command prints this itself, with the attempt trace.
            return
        default:
            if message.hasPrefix("circuit breaker") {
                line = "\(message): \(field("provider") ?? "?")"
            } else {
                let extras = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                line = "\(event.level): \(message)\(extras.isEmpty ? "" : " " + extras)"
            }
        }
        Console.errLine(line)
    }
}
