import Foundation
import Synchronization
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import Testing

/// Whether `python3` can import `module` (`.ci/run` installs the official `openai` package with pip).
///
/// Asked through ``runProcess(_:_:)``, so no cooperative thread blocks on the child process.
func pythonCanImport(_ module: String) async -> Bool {
    (try? await runProcess("/usr/bin/env", ["python3", "-c", "import \(module)"]).status == 0) ?? false
}

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("The official openai Python client against the gateway")
struct OpenAIClientTests {
    @Test(
        "chat, stream, include_usage, failover, tools and errors with the openai package",
        .enabled("python3 cannot import openai: run `pip install openai` to include this test") {
            await pythonCanImport("openai")
        }
    )
    func pythonClient() async throws {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gateway-test-key"]
        try await withGateway(
            configuration: configuration,
            chains: { server in
                [
                    "default": mockChain(on: server),
                    "failover": mockChain(on: server, models: [("primary", "model-failing"), ("backup", "model-backup")]),
                    "midstream": mockChain(on: server, models: [("primary", "model-cut")]),
                    "tools": mockChain(on: server, models: [("primary", "model-tools")]),
                    "fidelity": mockChain(on: server, models: [("primary", "model-fidelity")]),
                    // Mid-stream rescue: a cut finished by a provider that takes a prefill; a cut tool call is not;
                    // a continuation refused with a 400 ends with an error naming the cut.
                    "rescue": MidStreamRescueGatewayTests.chain([
                        mockProvider("primary", model: "model-rescue-cut", on: server),
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-sonnet-rescue"),
                    ]),
                    "rescue_tools": MidStreamRescueGatewayTests.chain([
                        mockProvider("primary", model: "model-rescue-tool-cut", on: server),
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-sonnet-tools"),
                    ]),
                    "rescue_refused": MidStreamRescueGatewayTests.chain([
                        mockProvider("primary", model: "model-rescue-cut-2", on: server),
                        MidStreamRescueGatewayTests.claude(server, "claude-3-5-sonnet-refusing"),
                    ]),
                ]
            }
        ) { server, gateway in
            server.script("model-failing", .status(500))
            server.script("model-cut", .cutStream(afterChunks: 1))
            server.script("model-tools", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let fidelityAnswer = #"""
                {"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"model-fidelity","system_fingerprint":"fp_44",
                 "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"logprobs":{"content":[{"token":"Hi",
                 "logprob":-0.1,"bytes":[72,105],"top_logprobs":[]}]},"finish_reason":"stop"}],
                 "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}
                """#
            server.script("model-fidelity", .raw(status: 200, headers: ["content-type": "application/json"], body: fidelityAnswer))
            let answer = MidStreamRescueGatewayTests.answer
            server.script("model-rescue-cut", .cutStream(afterChunks: 3, text: answer))
            server.script("claude-3-5-sonnet-rescue", .text(MidStreamRescueGatewayTests.rest))
            server.script("model-rescue-tool-cut", MidStreamRescueGatewayTests.cutOpenAIToolCall)
            server.script("model-rescue-cut-2", .cutStream(afterChunks: 3, text: answer))
            server.script("claude-3-5-sonnet-refusing", .status(400, message: "This model does not support assistant message prefill."))
            let script = packageRoot.appendingPathComponent("scripts/gateway_client_test.py").path
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", script, "--base-url", gateway.baseURL + "/v1", "--api-key", "gateway-test-key"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(" passed, 0 failed"), "\(result.output)")
            #expect(result.output.contains("ok   rescue: the joined text is the answer"), "\(result.output)")
            #expect(server.requests(for: "claude-3-5-sonnet-tools").isEmpty)
            // What the official client sent reached the provider whole, in order.
            let sent = try #require(server.requests(for: "model-fidelity").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["reasoning_effort"] == "high")
            #expect(upstream["logprobs"] == true)
            #expect(upstream["top_logprobs"] == 2)
            #expect(upstream["metadata"] == ["k": "v"])
            #expect(upstream["store"] == true)
            #expect(upstream["a_field_of_the_future"] == ["z": 1, "a": 2])
            #expect(upstream["response_format"]?["json_schema"]?["schema"]?["properties"]?.members?.keys == ["zeta", "alpha"])
        }
    }
}

/// Runs a process to its end off the cooperative pool, returning its exit status and combined output.
///
/// The output is read while the process runs (a full pipe would stop it), and a process still running after
/// `timeout` is killed: the wait always ends.
func runProcess(
    _ executable: String,
    _ arguments: [String],
    timeout: Duration = .seconds(120)
) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let output = Mutex(Data())
    let reading = DispatchGroup()
    reading.enter()
    pipe.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if data.isEmpty {
            handle.readabilityHandler = nil
            reading.leave()
        } else {
            output.locked { $0.append(data) }
        }
    }
    return try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { process in
            // The output ends when the last writer (the process or a child it left running) closes the pipe.
            _ = reading.wait(timeout: .now() + 10)
            let text = output.locked { String(decoding: $0, as: UTF8.self) }
            continuation.resume(returning: (process.terminationStatus, text))
        }
        do {
            try process.run()
        } catch {
            pipe.fileHandleForReading.readabilityHandler = nil
            continuation.resume(throwing: error)
            return
        }
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.timeInterval) {
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }
}

extension Duration {
    /// The duration in seconds, for Foundation and Dispatch.
    fileprivate var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
