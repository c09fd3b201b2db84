import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1

/// One wire format: turns a ``ChatRequest`` into HTTP, and HTTP back into a ``ChatResponse``, stream chunks or a
/// ``ProviderError``.
///
/// Adapters are pure and synchronous: bytes in, values out, no I/O and no clock, so every format can be tested from
/// fixtures. ``adapter(for:)`` returns the built-in adapter of a wire format.
public protocol ProviderAdapter: Sendable {
    /// Builds the HTTP request for `request`.
    ///
    /// - Parameters:
    ///   - request: The provider-neutral request.
    ///   - provider: Where to send it and with which key.
    ///   - stream: Whether to ask for a streamed answer.
    /// - Throws: ``ProviderError`` of kind ``ProviderError/Kind/invalidRequest`` when the request cannot be
    ///   expressed in this format.
    func makeRequest(_ request: ChatRequest, for provider: ResolvedProvider, stream: Bool) throws(ProviderError) -> HTTPRequestParts

    /// Decodes a successful (2xx) response body.
    ///
    /// - Throws: ``ProviderError``: ``ProviderError/Kind/invalidResponse`` for a body that is not what the format
    ///   promises, or the class of an error the body reports.
    func decodeResponse(_ body: ByteBuffer, headers: HTTPHeaders, for provider: ResolvedProvider) throws(ProviderError) -> ChatResponse

    /// Classifies an error response (status outside 2xx).
    func classifyError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> ProviderError

    /// Creates the state machine that turns this format's stream events into chunks.
    func makeStreamDecoder(for provider: ResolvedProvider) -> any StreamDecoder
}

/// Turns one stream's Server-Sent Events into provider-neutral chunks, keeping the state a format needs
/// (tool-call indices, cumulative usage, the terminator).
public protocol StreamDecoder: Sendable {
    /// Decodes one event.
    ///
    /// - Returns: The chunk it carries, or `nil` for events with nothing for the caller (pings, block stops).
    /// - Throws: ``ProviderError``: the class of an in-stream error event, or
    ///   ``ProviderError/Kind/invalidResponse`` for a malformed event.
    mutating func decode(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk?

    /// Whether the format's terminator (`[DONE]`, `message_stop`, a Gemini finish reason) has arrived.
    var isComplete: Bool { get }
}

extension WireFormat {
    /// The built-in adapter for this format.
    public var adapter: any ProviderAdapter {
        switch self {
        case .anthropic: return AnthropicAdapter()
        case .gemini: return GeminiAdapter()
        case .azureOpenAI: return OpenAIAdapter(azure: true)
        default: return OpenAIAdapter(azure: false)
        }
    }
}

// MARK: - Shared helpers for adapters

enum WireJSON {
    /// Shared coders: both are `Sendable` and keep no state between calls, and creating one per call costs
    /// allocations on every request.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()
    static let decoder = JSONDecoder()

    static func encode(_ value: some Encodable) throws(ProviderError) -> ByteBuffer {
        do {
            return ByteBuffer(data: try encoder.encode(value))
        } catch {
            throw ProviderError(.invalidRequest, message: "could not encode the request: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer, what: String) throws(ProviderError) -> T {
        do {
            return try body.withUnsafeReadableBytes { bytes in
                try decoder.decode(T.self, from: Data(bytes))
            }
        } catch {
            throw ProviderError(.invalidResponse, message: "malformed \(what): \(describe(error)); body: \(snippet(body))")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String, what: String) throws(ProviderError) -> T {
        do {
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw ProviderError(.invalidResponse, message: "malformed \(what): \(describe(error)); data: \(text.prefix(200))")
        }
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "at the top level" : "at \(keys.hasPrefix(".") ? String(keys.dropFirst()) : keys)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key '\(key.stringValue)' \(path(context))"
        case .typeMismatch(let type, let context): return "expected \(type) \(path(context))"
        case .valueNotFound(let type, let context): return "null where \(type) was expected \(path(context))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value \(path(context))"
        @unknown default: return "\(error)"
        }
    }

    static func snippet(_ body: ByteBuffer) -> String {
        let text = String(buffer: body)
        if text.isEmpty { return "(empty)" }
        return text.count > 200 ? String(text.prefix(200)) + "..." : text
    }
}

enum ErrorClassifier {
    /// The class an HTTP status stands for, before the body refines it.
    static func kind(forStatus status: Int) -> ProviderError.Kind {
        switch status {
        case 401: return .authentication
        case 403: return .permissionDenied
        case 404: return .notFound
        case 408: return .timeout
        case 409: return .serverError
        case 429: return .rateLimited
        case 503, 529: return .overloaded
        case 504: return .timeout
        case 500...599: return .serverError
        default: return .invalidRequest
        }
    }

    /// The delay from `retry-after-ms`, or `retry-after` as seconds or an HTTP date.
    static func retryAfter(from headers: HTTPHeaders, now: Date = Date()) -> Duration? {
        if let value = headers.first(name: "retry-after-ms"), let ms = Double(value.trimmingCharacters(in: .whitespaces)), ms >= 0 {
            return .milliseconds(ms)
        }
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
            return nil
        }
        if let seconds = Double(value), seconds >= 0 {
            return .milliseconds(seconds * 1000)
        }
        if let date = parseHTTPDate(value) {
            let seconds = max(0, date.timeIntervalSince(now))
            return .milliseconds(seconds * 1000)
        }
        return nil
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    /// A duration written like Google's `"12s"` or `"0.5s"`.
    static func parseGoogleDuration(_ text: String) -> Duration? {
        guard text.hasSuffix("s"), let seconds = Double(text.dropLast()), seconds >= 0 else { return nil }
        return .milliseconds(seconds * 1000)
    }

    /// An error whose body is not the format's error JSON (an HTML page from a proxy, an empty body): classified
    /// by status, with the body's start as the message.
    static func unstructuredError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> ProviderError {
        let text = String(buffer: body)
        var kind = kind(forStatus: status)
        if kind == .invalidRequest && mentionsContextLength(text) { kind = .contextLengthExceeded }
        return ProviderError(
            kind,
            status: status,
            message: text.isEmpty ? "HTTP \(status)" : String(text.prefix(500)),
            retryAfter: retryAfter(from: headers),
            requestID: requestID(from: headers)
        )
    }

    static func requestID(from headers: HTTPHeaders) -> String? {
        headers.first(name: "x-request-id") ?? headers.first(name: "request-id") ?? headers.first(name: "apim-request-id")
            ?? headers.first(name: "x-goog-request-id")
    }

    static func mentionsContextLength(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.contains("context_length_exceeded") || lower.contains("context length")
            || lower.contains("context window") || lower.contains("prompt is too long")
            || lower.contains("maximum number of tokens") || lower.contains("too many tokens")
            || lower.contains("input token count") || lower.contains("reduce the length")
    }

    static func mentionsContentFilter(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.contains("content_filter") || lower.contains("content_policy") || lower.contains("content management policy")
            || lower.contains("responsibleaipolicyviolation") || lower.contains("safety system")
    }
}

extension HTTPHeaders {
    mutating func addJSONHeaders() {
        add(name: "content-type", value: "application/json")
        add(name: "accept", value: "application/json")
    }
}

extension Array where Element == Message {
    /// The name of the tool each tool call id refers to, from the assistant turns.
    var toolNamesByCallID: [String: String] {
        var names: [String: String] = [:]
        for message in self where message.role == .assistant {
            for call in message.toolCalls { names[call.id] = call.name }
        }
        return names
    }
}
