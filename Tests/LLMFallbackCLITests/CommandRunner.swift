import LLMFallback
import Foundation
import LLMFallbackTesting
import Synchronization
import Testing

/// What one run of the built `llm-fallback` binary produced.
struct CommandResult: Sendable {
    /// The exit status.
    var status: Int32
    /// Everything written to standard output.
    var stdout: String
    /// Everything written to standard error.
    var stderr: String
    /// How long the process ran.
    var duration: Duration

    /// Standard output and standard error together.
    var allOutput: String { stdout + "\n" + stderr }
}

/// Runs the built `llm-fallback` binary as swift-argument-parser's own test helpers do: found next to the test
/// bundle (or in `.build/debug`, derived from this file's path), run with `Process`, pipes and a controlled
/// environment.
enum CommandRunner {
    /// A key distinctive enough that finding it in any output means a key leaked.
    static let secretKey = "fake-key-ZEBRA-never-print-me"
    /// A second one, for a second provider.
    static let secondSecretKey = "fake-key-OKAPI-never-print-me"

    /// The built command; `LLM_FALLBACK_TEST_BINARY` names another build to test (an older one, to see a new
    /// test fail on the code before a fix).
    static let binary: URL = {
        if let other = ProcessInfo.processInfo.environment["LLM_FALLBACK_TEST_BINARY"], !other.isEmpty {
            return URL(fileURLWithPath: other)
        }
        let nextToBundle = Bundle.main.bundleURL.appendingPathComponent("llm-fallback")
        if FileManager.default.isExecutableFile(atPath: nextToBundle.path) { return nextToBundle }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            let candidate = bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("llm-fallback")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/llm-fallback")
    }()

    /// The package's root directory.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs the command.
    ///
    /// - Parameters:
    ///   - arguments: The arguments after the command name.
    ///   - environment: Variables added to a minimal environment (`PATH`, `HOME`); nothing else is inherited, so
    ///     keys in the developer's environment never reach the command.
    ///   - stdin: Text fed to standard input (which is then closed); empty input when `nil`.
    ///   - directory: The working directory; a fresh empty one when `nil`.
    ///   - timeout: The process is terminated after this long.
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        stdin: String? = nil,
        directory: URL? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> CommandResult {
        let workingDirectory = try directory ?? makeTemporaryDirectory()
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": workingDirectory.path, "LANG": "C.UTF-8"].merging(
            environment
        ) { $1 }
        let input = Pipe()
        let output = Pipe()
        let error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error

        let started = ContinuousClock.now
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        let box = ProcessBox(process)
        let inputHandle = input.fileHandleForWriting
        let outputHandle = output.fileHandleForReading
        let errorHandle = error.fileHandleForReading
        let collected = Mutex<(Data, Data)>((Data(), Data()))
        // Every blocking wait on a thread of its own: Dispatch's global pool has as many threads as cores, and
        // readers blocked on pipes could take them all, leaving none to fire a timeout.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            onOwnThread(group) {
                if let stdin { inputHandle.write(Data(stdin.utf8)) }
                try? inputHandle.close()
            }
            onOwnThread(group) {
                let data = outputHandle.readDataToEndOfFile()
                collected.locked { $0.0 = data }
            }
            onOwnThread(group) {
                let data = errorHandle.readDataToEndOfFile()
                collected.locked { $0.1 = data }
            }
            onOwnThread(group) {
                // The deadline: terminate, then kill, a command that does not end in time.
                if exited.wait(timeout: .now() + timeout.timeInterval) == .timedOut {
                    box.process.terminate()
                    if exited.wait(timeout: .now() + 10) == .timedOut {
                        kill(box.process.processIdentifier, SIGKILL)
                        _ = exited.wait(timeout: .now() + 10)
                    }
                }
            }
            onOwnThread { group.wait(); continuation.resume() }
        }
        let (stdoutData, stderrData) = collected.locked { $0 }
        return CommandResult(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self),
            duration: ContinuousClock.now - started
        )
    }

    /// A new empty directory.
    static func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "llm-fallback-cli-tests-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `text` to a new file in a new directory and returns its path.
    static func writeConfig(_ text: String, name: String = "llm-fallback.yaml") throws -> String {
        let url = try makeTemporaryDirectory().appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// The environment holding the test keys, as the test configurations reference them.
    static var keyEnvironment: [String: String] {
        ["TEST_OPENAI_KEY": secretKey, "TEST_ANTHROPIC_KEY": secondSecretKey]
    }

    /// Expects that no key appears in the output.
    static func expectNoKeys(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.allOutput.contains(secretKey), "a key leaked into the output", sourceLocation: sourceLocation)
        #expect(
            !result.allOutput.contains(secondSecretKey),
            "a key leaked into the output",
            sourceLocation: sourceLocation
        )
        #expect(
            !result.allOutput.contains("ZEBRA"),
            "part of a key leaked into the output",
            sourceLocation: sourceLocation
        )
        #expect(
            !result.allOutput.contains("OKAPI"),
            "part of a key leaked into the output",
            sourceLocation: sourceLocation
        )
    }
}

/// Runs `body` on a new thread (not Dispatch's global pool), inside `group` when given.
func onOwnThread(_ group: DispatchGroup? = nil, _ body: @escaping @Sendable () -> Void) {
    group?.enter()
    let thread = Thread {
        body()
        group?.leave()
    }
    thread.start()
}

extension Duration {
    /// The duration in seconds, for Dispatch and Foundation.
    var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Lets the timeout and the waiter share the process.
final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}

/// A configuration with two providers on `server`: `openai/primary-model` (OpenAI format) first, then
/// `anthropic/backup-model` (Anthropic format), keys from `TEST_OPENAI_KEY` and `TEST_ANTHROPIC_KEY`.
func twoProviderConfig(_ server: MockLLMServer, extraChains: String = "") -> String {
    """
    chains:
      default:
        strategy: ordered
        request_timeout: 20s
        circuit_breaker: { failure_threshold: 5, recovery_timeout: 30s }
        providers:
          - name: openai
            model: primary-model
            api_key: ${TEST_OPENAI_KEY}
            base_url: \(server.openAIBaseURL)
            max_retries: 0
            timeout: 10s
          - name: anthropic
            model: backup-model
            api_key: "${TEST_ANTHROPIC_KEY}"
            base_url: \(server.baseURL)
            max_retries: 0
            timeout: 10s
    \(extraChains)
    """
}
