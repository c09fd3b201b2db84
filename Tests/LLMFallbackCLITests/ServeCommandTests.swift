import LLMFallback
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LLMFallbackTesting
import Synchronization
import Testing

/// `llm-fallback serve`, through the built binary: it fails closed, and says when authentication is off.
@Suite("serve")
struct ServeCommandTests {
    /// A one-chain file on `server`, with `server` lines appended.
    static func config(_ server: MockLLMServer, serverSection: String) -> String {
        """
        chains:
          default:
            providers:
              - { name: openai, model: primary-model, api_key: "${TEST_OPENAI_KEY}", base_url: "\(server.openAIBaseURL)", max_retries: 0 }
        server:
        \(serverSection)
        """
    }

    @Test("a gateway key that expands to nothing: config validate and serve exit 2 naming file, line and key")
    func emptyGatewayKey() async throws {
        try await withMockLLMServer { server in
            let path = try CommandRunner.writeConfig(
                Self.config(server, serverSection: "  port: 0\n  api_keys: [\"${LLM_FALLBACK_GATEWAY_KEY}\"]")
            )
            var environment = CommandRunner.keyEnvironment
            environment["LLM_FALLBACK_GATEWAY_KEY"] = ""
            let expected = "\(path):7: server.api_keys[0]: the API key is empty: ${LLM_FALLBACK_GATEWAY_KEY} is set to the empty string"
            for arguments in [["config", "validate", "--config", path], ["serve", "--config", path]] {
                let result = try await CommandRunner.run(arguments, environment: environment, timeout: .seconds(60))
                #expect(result.status == 2, "\(arguments[0]): \(result.allOutput)")
                #expect(result.stderr.contains(expected), "\(arguments[0]): \(result.stderr)")
                #expect(!result.allOutput.contains("listening"))
                CommandRunner.expectNoKeys(result)
            }
        }
    }

    @Test("a gateway key no client can send is an error that never shows the key")
    func unsendableGatewayKey() async throws {
        try await withMockLLMServer { server in
            let path = try CommandRunner.writeConfig(
                Self.config(server, serverSection: "  api_keys: [\"${GATEWAY_KEY}\"]")
            )
            var environment = CommandRunner.keyEnvironment
            environment["GATEWAY_KEY"] = "fake-key-ZEBRA with a space\n"
            let result = try await CommandRunner.run(["config", "validate", "--config", path], environment: environment)
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(path):6: server.api_keys[0]: the API key contains spaces or control characters"))
            CommandRunner.expectNoKeys(result)
        }
    }

    @Test("a non-loopback address without keys needs allow_unauthenticated: true")
    func publicAddressNeedsOptIn() async throws {
        try await withMockLLMServer { server in
            let path = try CommandRunner.writeConfig(Self.config(server, serverSection: "  host: 0.0.0.0\n  port: 0"))
            for arguments in [["config", "validate", "--config", path], ["serve", "--config", path]] {
                let result = try await CommandRunner.run(arguments, environment: CommandRunner.keyEnvironment, timeout: .seconds(60))
                #expect(result.status == 2, "\(arguments[0]): \(result.allOutput)")
                #expect(
                    result.stderr.contains("\(path):6: server.host: '0.0.0.0' is not a loopback address and no api_keys are set"),
                    "\(result.stderr)"
                )
            }
            // The file binds loopback, the command line asks for every address: refused too.
            let loopback = try CommandRunner.writeConfig(Self.config(server, serverSection: "  port: 0"))
            let override = try await CommandRunner.run(
                ["serve", "--config", loopback, "--host", "0.0.0.0"],
                environment: CommandRunner.keyEnvironment,
                timeout: .seconds(60)
            )
            #expect(override.status == 2, "\(override.allOutput)")
            #expect(override.stderr.contains("--host 0.0.0.0: not a loopback address"), "\(override.stderr)")
        }
    }

    @Test("serve says plainly in its log when authentication is off")
    func logsAuthenticationOff() async throws {
        try await withMockLLMServer { server in
            let cases: [(section: String, expected: String)] = [
                ("  port: 0", "authentication is OFF: no API keys are configured"),
                ("  host: 0.0.0.0\n  port: 0\n  allow_unauthenticated: true", "authentication is OFF on 0.0.0.0: anyone who can reach"),
                ("  port: 0\n  api_keys: [\"${GATEWAY_KEY}\"]", "authentication: on, 1 API key"),
            ]
            for (section, expected) in cases {
                let path = try CommandRunner.writeConfig(Self.config(server, serverSection: section))
                var environment = CommandRunner.keyEnvironment
                environment["GATEWAY_KEY"] = "fake-key-OKAPI-gateway"
                let serve = try ServeProcess(
                    ["serve", "--config", path, "--log-level", "debug", "--grace-period", "1s"],
                    environment: environment
                )
                let ready = await serve.waitForOutput(containing: expected, within: .seconds(60))
                let output = await serve.stop()
                #expect(ready, "\(output)")
                // NIO runs Swift Concurrency: installed by the synchronous entry point before any task ran.
                #expect(output.contains("swift concurrency on NIO event loops: true"), "\(output)")
                #expect(!output.contains("OKAPI"))
                #expect(!output.contains("ZEBRA"))
            }
        }
    }

    @Test("serve applies the server.limits of the file")
    func limitsFromTheFile() async throws {
        try await withMockLLMServer { server in
            server.script("primary-model", .hang)
            let path = try CommandRunner.writeConfig(
                Self.config(server, serverSection: "  port: 0\n  limits: { max_concurrent_requests: 1, header_timeout: 2s }")
            )
            let serve = try ServeProcess(
                ["serve", "--config", path, "--grace-period", "1s"],
                environment: CommandRunner.keyEnvironment
            )
            guard await serve.waitForOutput(containing: "listening on http://127.0.0.1:", within: .seconds(60)),
                let port = serve.port
            else {
                Issue.record("serve did not start: \(await serve.stop())")
                return
            }
            let body = #"{"model":"default","messages":[{"role":"user","content":"Hi"}]}"#
            let hanging = Task { try? await postJSON(port: port, body: body) }
            try await server.waitForRequests(1)
            let refused = try await postJSON(port: port, body: body)
            #expect(refused.status == 503, "\(refused.body)")
            #expect(refused.body.contains("gateway_overloaded"))
            hanging.cancel()
            _ = await serve.stop()
            _ = await hanging.value
        }
    }
}

/// Posts `body` to the gateway's chat completions and reads the answer (URLSession: the CLI tests link no HTTP
/// client of their own).
func postJSON(port: Int, body: String) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/chat/completions")!)
    request.httpMethod = "POST"
    request.httpBody = Data(body.utf8)
    request.setValue("application/json", forHTTPHeaderField: "content-type")
    request.timeoutInterval = 30
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// The built binary running `serve` in the background: its output collected as it comes, waited on with a
/// deadline, and stopped with SIGTERM (SIGKILL if it does not end in time).
final class ServeProcess: Sendable {
    private struct State {
        var output = ""
        var waiters: [(id: Int, text: String, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID = 0
        var ended = false
    }

    private let process: ProcessBox
    private let state = Mutex(State())
    private let exited = DispatchSemaphore(value: 0)

    init(_ arguments: [String], environment: [String: String]) throws {
        let directory = try CommandRunner.makeTemporaryDirectory()
        let process = Process()
        process.executableURL = CommandRunner.binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": directory.path, "LANG": "C.UTF-8"].merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = Pipe()
        self.process = ProcessBox(process)
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        let handle = output.fileHandleForReading
        onOwnThread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                append(String(decoding: data, as: UTF8.self))
            }
            let waiters = state.locked { state in
                state.ended = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.continuation.resume(returning: false) }
        }
    }

    /// The port from the `listening on http://127.0.0.1:PORT` line, once logged.
    var port: Int? {
        let output = state.locked { $0.output }
        guard let range = output.range(of: "listening on http://127.0.0.1:") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

    /// Waits until the output contains `text`, the process ends, or `limit` passes.
    ///
    /// - Returns: Whether the text appeared.
    func waitForOutput(containing text: String, within limit: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let (id, immediate): (Int, Bool?) = state.locked { state in
                if state.output.contains(text) { return (0, true) }
                if state.ended { return (0, false) }
                let id = state.nextID
                state.nextID += 1
                state.waiters.append((id, text, continuation))
                return (id, nil)
            }
            if let immediate {
                continuation.resume(returning: immediate)
                return
            }
            let seconds = limit.timeInterval
            onOwnThread { [self] in
                Thread.sleep(forTimeInterval: seconds)
                let waiter = state.locked { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume(returning: false)
            }
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 20 s) and returns everything it printed.
    func stop() async -> String {
        let box = self.process
        let exited = self.exited
        if box.process.isRunning { box.process.terminate() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            onOwnThread {
                if exited.wait(timeout: .now() + 20) == .timedOut {
                    kill(box.process.processIdentifier, SIGKILL)
                    _ = exited.wait(timeout: .now() + 10)
                }
                exited.signal()  // for a second stop()
                continuation.resume()
            }
        }
        return state.locked { $0.output }
    }

    private func append(_ text: String) {
        let ready = state.locked { state -> [CheckedContinuation<Bool, Never>] in
            state.output += text
            let output = state.output
            let ready = state.waiters.filter { output.contains($0.text) }
            state.waiters.removeAll { output.contains($0.text) }
            return ready.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: true) }
    }
}
