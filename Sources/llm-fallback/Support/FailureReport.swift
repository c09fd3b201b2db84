import ArgumentParser
import LLMFallback

/// Turns a failed request into a message on standard error and the command's exit status.
enum FailureReport {
    /// Prints `error` (with the attempt trace when there is one) on standard error and returns the exit code:
    /// 1 for a failed request, 130 for an interrupted one.
    static func report(_ error: any Error) -> ExitCode {
        switch error {
        case let failed as AllProvidersFailed:
            Console.errLine("error: \(failed)")
            printTrace(failed.trace)
            return ExitCode(1)
        case let interrupted as StreamInterrupted:
            Console.errLine("error: \(interrupted)")
            printTrace(interrupted.trace)
            return ExitCode(1)
        case let providerError as ProviderError:
            Console.errLine("error: \(providerError)")
            return ExitCode(1)
        case is CancellationError:
            Console.errLine("error: cancelled")
            return ExitCode(130)
        default:
            Console.errLine("error: \(error)")
            return ExitCode(1)
        }
    }

    /// Prints the attempts, one per line, on standard error.
    static func printTrace(_ trace: [AttemptRecord]) {
        guard !trace.isEmpty else { return }
        Console.errLine("attempts:")
        for (index, record) in trace.enumerated() {
            var line = "  \(index + 1). \(record)"
            if let message = record.message, !message.isEmpty { line += ": \(message.prefix(300))" }
            Console.errLine(line)
        }
    }
}
