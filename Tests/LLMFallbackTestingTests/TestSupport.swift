import AsyncHTTPClient
import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Testing

/// One of the server's routes, with the request a client of that provider would send.
enum Endpoint: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case openAI
    case azure
    case anthropic
    case gemini

    var testDescription: String { self.rawValue }

    var format: MockWireFormat {
        switch self {
        case .openAI: .openAI
        case .azure: .azure
        case .anthropic: .anthropic
        case .gemini: .gemini
        }
    }

    func url(on server: MockLLMServer, model: String, stream: Bool) -> String {
        switch self {
        case .openAI:
            server.openAIBaseURL + "/chat/completions"
        case .azure:
            server.baseURL + "/openai/deployments/\(model)/chat/completions?api-version=2024-10-21"
        case .anthropic:
            server.baseURL + "/v1/messages"
        case .gemini:
            server.baseURL + "/v1beta/models/\(model)"
                + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent")
        }
    }

    func body(model: String, stream: Bool, includeUsage: Bool = false) -> String {
        let messages = #""messages":[{"role":"user","content":"Hi"}]"#
        let usage = includeUsage ? #","stream_options":{"include_usage":true}"# : ""
        switch self {
        case .openAI:
            return #"{"model":"\#(model)",\#(messages),"stream":\#(stream)\#(usage)}"#
        case .azure:
            return #"{\#(messages),"stream":\#(stream)\#(usage)}"#
        case .anthropic:
            return #"{"model":"\#(model)","max_tokens":256,\#(messages),"stream":\#(stream)}"#
        case .gemini:
            return #"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#
        }
    }

    /// The answer text of a non-streamed body.
    func answerText(_ body: [String: Any]) -> String? {
        switch self {
        case .openAI, .azure:
            (body.array("choices")?.first?.object("message"))?["content"] as? String
        case .anthropic:
            body.array("content")?.first?["text"] as? String
        case .gemini:
            body.array("candidates")?.first?.object("content")?.array("parts")?.first?["text"] as? String
        }
    }

    /// The text carried by the content events of a stream.
    func streamedText(_ events: [SSEEvent]) throws -> String {
        var text = ""
        for event in events where event.data != "[DONE]" && event.data != "{not json" {
            let json = try event.json()
            switch self {
            case .openAI, .azure:
                text += json.array("choices")?.first?.object("delta")?["content"] as? String ?? ""
            case .anthropic where event.name == "content_block_delta":
                text += json.object("delta")?["text"] as? String ?? ""
            case .anthropic:
                break
            case .gemini:
                text +=
                    json.array("candidates")?.first?.object("content")?.array("parts")?.first?["text"] as? String ?? ""
            }
        }
        return text
    }

    /// Whether the stream ends with the format's terminator.
    func isTerminated(_ events: [SSEEvent]) -> Bool {
        guard let last = events.last else { return false }
        switch self {
        case .openAI, .azure:
            return last.data == "[DONE]"
        case .anthropic:
            return last.name == "message_stop"
        case .gemini:
            guard let json = try? last.json() else { return false }
            return json.array("candidates")?.first?["finishReason"] is String
        }
    }
}

/// One Server-Sent Event.
struct SSEEvent: Sendable {
    var name: String?
    var data: String

    func json() throws -> [String: Any] {
        try parseJSON(self.data)
    }
}

/// A response read to its end, with the body pieces as the client received them.
struct ReceivedResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var parts: [String]

    var text: String { self.parts.joined() }

    func json() throws -> [String: Any] {
        try parseJSON(self.text)
    }

    var events: [SSEEvent] { parseSSE(self.text) }
}

/// Parses Server-Sent Events, accepting LF and CRLF line ends.
func parseSSE(_ text: String) -> [SSEEvent] {
    text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n").compactMap { block in
        var name: String?
        var data: [String] = []
        for line in block.split(separator: "\n") {
            if line.hasPrefix("event:") {
                name = line.dropFirst("event:".count).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("data:") {
                data.append(String(line.dropFirst("data:".count).drop { $0 == " " }))
            }
        }
        return data.isEmpty && name == nil ? nil : SSEEvent(name: name, data: data.joined(separator: "\n"))
    }
}

struct NotAJSONObject: Error {
    var text: String
}

func parseJSON(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw NotAJSONObject(text: text)
    }
    return object
}

extension Dictionary where Key == String, Value == Any {
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func array(_ key: String) -> [[String: Any]]? { self[key] as? [[String: Any]] }
}

/// How many times longer a real-time bound on a test's duration may be when the run is slowed down on purpose:
/// `LLM_FALLBACK_TEST_TIME_SCALE`, a whole number from 1 to 100 (`scripts/sanitize.sh` sets 5: ThreadSanitizer
/// makes this code 5-15 times slower), 1 when unset or anything else. Only bounds on elapsed time use it, and only
/// those a sanitized run was seen to miss; never an assertion on an outcome.
enum TestTimeScale {
    static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["LLM_FALLBACK_TEST_TIME_SCALE"],
            let value = Int(text), (1...100).contains(value)
        else { return 1 }
        return value
    }()

    /// `bound`, times `factor`.
    static func scaled(_ bound: TimeAmount) -> TimeAmount { .nanoseconds(bound.nanoseconds * Int64(factor)) }

    /// A client whose connect timeout (30 s, as ``HTTPClient/Configuration/loopbackTests``) is scaled.
    static var clientConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = scaled(.seconds(30))
        return configuration
    }
}

/// Runs `body` with a fresh server and HTTP client, shutting both down afterwards.
func withServer(
    clientConfiguration: HTTPClient.Configuration = .loopbackTests,
    _ body: (MockLLMServer, HTTPClient) async throws -> Void
) async throws {
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    do {
        try await withMockLLMServer { server in
            try await body(server, client)
        }
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}

extension HTTPClient.Configuration {
    /// A 30 s connect timeout: a loaded 2-core machine (the suite runs tests in parallel) can take seconds to accept
    /// on loopback, and AsyncHTTPClient's default 10 s failed tests there, never the behaviour under test.
    static var loopbackTests: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(30)
        return configuration
    }
}

extension HTTPClient {
    /// Sends a JSON POST and reads the whole response.
    func post(
        _ url: String,
        json: String,
        headers: [(String, String)] = [],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> ReceivedResponse {
        let response = try await self.execute(.post(url, json: json, headers: headers), timeout: timeout)
        var parts: [String] = []
        for try await buffer in response.body {
            parts.append(String(buffer: buffer))
        }
        return ReceivedResponse(status: Int(response.status.code), headers: response.headers, parts: parts)
    }

    /// Sends `endpoint`'s request for `model`.
    func send(
        _ endpoint: Endpoint,
        to server: MockLLMServer,
        model: String,
        stream: Bool = false,
        includeUsage: Bool = false,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> ReceivedResponse {
        try await self.post(
            endpoint.url(on: server, model: model, stream: stream),
            json: endpoint.body(model: model, stream: stream, includeUsage: includeUsage),
            timeout: timeout
        )
    }
}

extension HTTPClientRequest {
    static func post(_ url: String, json: String, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(contentsOf: headers)
        request.body = .bytes(ByteBuffer(string: json))
        return request
    }
}
