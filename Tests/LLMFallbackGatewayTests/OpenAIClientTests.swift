import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import Testing

/// Whether `python3` can import the official `openai` package (`.ci/run` installs it with pip).
let openAIPythonAvailable: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import openai"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch {
        return false
    }
}()

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("The official openai Python client against the gateway")
struct OpenAIClientTests {
    @Test(
        "chat, stream, include_usage, failover, tools and errors with the openai package",
        .enabled(if: openAIPythonAvailable, "python3 cannot import openai: run `pip install openai` to include this test")
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
                ]
            }
        ) { server, gateway in
            server.script("model-failing", .status(500))
            server.script("model-cut", .cutStream(afterChunks: 1))
            server.script("model-tools", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let script = packageRoot.appendingPathComponent("scripts/gateway_client_test.py").path
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", script, "--base-url", gateway.baseURL + "/v1", "--api-key", "gateway-test-key"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(" passed, 0 failed"), "\(result.output)")
        }
    }
}

/// Runs a process to its end off the cooperative pool, returning its exit status and combined output.
func runProcess(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    return try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { process in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            continuation.resume(returning: (process.terminationStatus, String(decoding: data, as: UTF8.self)))
        }
        do {
            try process.run()
        } catch {
            continuation.resume(throwing: error)
        }
    }
}
