import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

/// A provider key that must never leave the gateway.
let secretKey = "fake-provider-key-SUPERSECRET"

/// A provider on the mock server, OpenAI-compatible, under the kind `kind`, without retries.
func mockProvider(_ kind: String, model: String, on server: MockLLMServer, key: String = secretKey) -> Provider {
    var provider = Provider(kind, model: model, apiKey: key, baseURL: server.openAIBaseURL, timeout: .seconds(10), maxRetries: 0)
    provider.name = kind
    return provider
}

/// A chain over the mock: `primary` then `backup` unless told otherwise.
func mockChain(
    on server: MockLLMServer,
    models: [(kind: String, model: String)] = [("primary", "model-primary"), ("backup", "model-backup")],
    failureThreshold: Int = 5,
    midStreamPolicy: MidStreamPolicy = .fail
) -> FallbackChain {
    var configuration = FallbackChain.Configuration()
    configuration.circuitBreaker.failureThreshold = failureThreshold
    configuration.circuitBreaker.recoveryTimeout = .seconds(60)
    configuration.midStreamPolicy = midStreamPolicy
    configuration.retry.maxRetryAfterWait = .zero
    return FallbackChain(models.map { mockProvider($0.kind, model: $0.model, on: server) }, configuration: configuration)
}

/// Collects every log message and its metadata, to check what the gateway logs.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])

    var all: [String] { lines.locked { $0 } }

    func logger(label: String = "gateway-test") -> Logger {
        Logger(label: label) { _ in CapturingHandler(capture: self) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let line = "\(event.level) \(event.message) \(merged.map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
            capture.lines.locked { $0.append(line) }
        }
    }
}

/// A running gateway on a free port.
struct RunningGateway: Sendable {
    let port: Int
    let group: ServiceGroup
    let logs: LogCapture

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var client: HTTPClient { .shared }

    /// Sends a request and reads the whole answer.
    func send(
        _ method: HTTPMethod = .GET,
        _ path: String,
        body: String? = nil,
        headers: [(String, String)] = [],
        bearer: String? = nil
    ) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return HTTPAnswer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Posts a chat completion for `model`.
    func chat(
        _ model: String,
        stream: Bool = false,
        includeUsage: Bool = false,
        content: String = "Hi",
        bearer: String? = nil
    ) async throws -> HTTPAnswer {
        try await send(.POST, "/v1/chat/completions", body: chatBody(model, stream: stream, includeUsage: includeUsage, content: content), bearer: bearer)
    }
}

func chatBody(_ model: String, stream: Bool = false, includeUsage: Bool = false, content: String = "Hi") -> String {
    let usage = includeUsage ? #","stream_options":{"include_usage":true}"# : ""
    let escaped = content.replacingOccurrences(of: "\"", with: "\\\"")
    return #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(escaped)"}],"stream":\#(stream)\#(usage)}"#
}

/// A whole HTTP answer.
struct HTTPAnswer: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    var errorMessage: String { error["message"] as? String ?? "" }
    var errorCode: String? { error["code"] as? String }

    /// The `data:` payloads of an SSE body, in order.
    var events: [String] { parseEvents(body) }

    /// The JSON events (everything but `[DONE]`).
    var chunks: [[String: Any]] {
        events.compactMap { event in
            guard event != "[DONE]" else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(event.utf8))) as? [String: Any]
        }
    }

    /// The streamed text, joined.
    var streamedText: String {
        chunks.compactMap { chunk in
            ((chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
        }.joined()
    }
}

/// Splits a Server-Sent Events body into the `data:` payloads of its events.
func parseEvents(_ body: String) -> [String] {
    body.components(separatedBy: "\n\n").compactMap { block in
        let data = block.split(separator: "\n").filter { $0.hasPrefix("data:") }.map { line in
            line.dropFirst("data:".count).drop(while: { $0 == " " })
        }
        return data.isEmpty ? nil : data.joined(separator: "\n")
    }
}

/// Starts the mock server and a gateway in front of it (port 0), runs `body`, and shuts both down.
func withGateway<T: Sendable>(
    configuration: GatewayConfiguration = GatewayConfiguration(),
    chains: @escaping (MockLLMServer) -> [String: FallbackChain],
    _ body: (MockLLMServer, RunningGateway) async throws -> T
) async throws -> T {
    try await withMockLLMServer { server in
        try await withGateway(configuration: configuration, chains: chains(server)) { gateway in
            try await body(server, gateway)
        }
    }
}

/// Runs a gateway over `chains` on a free port for the duration of `body`.
func withGateway<T: Sendable>(
    configuration: GatewayConfiguration = GatewayConfiguration(),
    chains: [String: FallbackChain],
    _ body: (RunningGateway) async throws -> T
) async throws -> T {
    var configuration = configuration
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.bootstrapMetrics = false
    let logs = LogCapture()
    let gateway = try Gateway(chains: chains, configuration: configuration, logger: logs.logger())
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let app = gateway.buildApplication { port in portContinuation.yield(port) }
    var groupConfiguration = ServiceGroupConfiguration(services: [app], logger: logs.logger(label: "service-group"))
    groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
    let group = ServiceGroup(configuration: groupConfiguration)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw GatewayTestError("the gateway did not start") }
        let running = RunningGateway(port: port, group: group, logs: logs)
        do {
            let result = try await body(running)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw error
        }
    }
}

struct GatewayTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `operation`, failing if it takes longer than `limit` (a bound for a test that would otherwise hang).
func within<T: Sendable>(_ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw GatewayTestError("timed out after \(limit): \(what)")
        }
        group.cancelAll()
        return value
    }
}

/// Reads a streamed response event by event.
struct EventReader {
    var iterator: HTTPClientResponse.Body.AsyncIterator
    var pending = ""

    init(_ response: HTTPClientResponse) {
        iterator = response.body.makeAsyncIterator()
    }

    /// The next event's data, or nil at the end of the body.
    mutating func next() async throws -> String? {
        while true {
            if let range = pending.range(of: "\n\n") {
                let block = String(pending[..<range.lowerBound])
                pending.removeSubrange(..<range.upperBound)
                if let event = parseEvents(block + "\n\n").first { return event }
                continue
            }
            guard let buffer = try await iterator.next() else { return nil }
            pending += String(buffer: buffer)
        }
    }
}
