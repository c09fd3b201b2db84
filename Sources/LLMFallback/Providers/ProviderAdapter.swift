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

    /// Creates the stream decoder for one request: the chain calls this one, so that a format can decode a
    /// request's stream its own way (Anthropic relays every event of a passthrough request). The default is
    /// ``makeStreamDecoder(for:)``.
    func makeStreamDecoder(for provider: ResolvedProvider, request: ChatRequest) -> any StreamDecoder

    /// The request's parameters that ``makeRequest(_:for:stream:)`` leaves out for `provider`, by their OpenAI
    /// names: those this format has no counterpart for, a passthrough body's members a provider of another format
    /// cannot be sent, and those the provider's configuration drops. The default is none.
    func droppedParameters(in request: ChatRequest, for provider: ResolvedProvider) -> [String]

    /// How `provider` can be asked to continue a partial answer to `request`; ``AssistantPrefill/unsupported``
    /// when it cannot (the chain then never sends it one). The default is the provider's
    /// ``ResolvedProvider/assistantPrefill``; a format narrows it for requests that rule a prefill out (Anthropic's
    /// extended thinking).
    func assistantPrefill(for request: ChatRequest, provider: ResolvedProvider) -> AssistantPrefill
}

extension ProviderAdapter {
    public func droppedParameters(in request: ChatRequest, for provider: ResolvedProvider) -> [String] { [] }

    public func assistantPrefill(for request: ChatRequest, provider: ResolvedProvider) -> AssistantPrefill {
        provider.assistantPrefill
    }

    public func makeStreamDecoder(for provider: ResolvedProvider, request: ChatRequest) -> any StreamDecoder {
        makeStreamDecoder(for: provider)
    }
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

    /// Whether the stream may end here without having been cut short.
    ///
    /// A body that ends while this is `false` is a broken stream (a connection-class failure), never a success,
    /// however clean the close: an upstream that crashed behind a proxy often ends its chunked body cleanly.
    /// The default is ``isComplete``; OpenAI's format asks for a chunk with a `finish_reason` (`[DONE]` alone
    /// follows a cut).
    var endsCleanly: Bool { get }

    /// Whether no further event can follow, so the reader stops reading. The default is ``isComplete``; Gemini's
    /// format can send its usage after the finish reason, so its stream is read to the end of the body.
    var isExhausted: Bool { get }

    /// The usage the stream has reported so far without a chunk carrying it (Anthropic's `message_start` counts
    /// the prompt): what a stream that breaks here was billed at least. The default is `nil`.
    var usageSoFar: Usage? { get }
}

extension StreamDecoder {
    public var endsCleanly: Bool { isComplete }
    public var isExhausted: Bool { isComplete }
    public var usageSoFar: Usage? { nil }
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
    /// `body` (an OpenAI Chat Completions body whose last message is the partial answer) marked for a continuation
    /// the way `prefill` says: `"prefix": true` on that message, or `continue_final_message` and
    /// `add_generation_prompt` at the top. A continuation is rare (a rescued stream), so the body is re-parsed.
    static func continuingFinalMessage(_ body: ByteBuffer, prefill: AssistantPrefill) -> ByteBuffer {
        guard case .object(var members)? = try? JSONValue(parsing: body) else { return body }
        switch prefill.base {
        case .prefixFlag:
            guard case .array(var messages)? = members["messages"], case .object(var last)? = messages.last else { return body }
            last["prefix"] = true
            messages[messages.count - 1] = .object(last)
            members["messages"] = .array(messages)
        case .continueFinalMessage:
            members["continue_final_message"] = true
            members["add_generation_prompt"] = false
        case .trailingMessage, .unsupported:
            return body
        }
        var rewritten = ByteBufferAllocator().buffer(capacity: body.readableBytes + 64)
        rewritten.writeJSONValueLeniently(.object(members))
        return rewritten
    }

    /// `body` (a JSON object) with `extra`'s members set, replacing those of the same name, and the members
    /// named in `dropping` removed.
    static func merging(_ extra: JSONObject, into body: ByteBuffer, dropping: [String]) -> ByteBuffer {
        guard case .object(var members)? = try? JSONValue(parsing: body) else { return body }
        for key in dropping { members.removeValue(forKey: key) }
        for (key, value) in extra { members[key] = value }
        var merged = ByteBufferAllocator().buffer(capacity: body.readableBytes + 64)
        merged.writeJSONValueLeniently(.object(members))
        return merged
    }

    /// Shared coders: both are `Sendable` and keep no state between calls, and creating one per call costs
    /// allocations on every request.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()
    static let decoder = JSONDecoder()

    /// A request body written by the package's writer (members in order).
    ///
    /// - Throws: ``ProviderError/Kind/invalidRequest`` for a number JSON cannot express (NaN, infinity).
    static func write(_ body: JSONObject) throws(ProviderError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        do {
            try buffer.writeJSONValue(.object(body))
        } catch {
            throw ProviderError(.invalidRequest, message: "could not encode the request: a number is NaN or infinite")
        }
        return buffer
    }

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
    ///
    /// Only statuses that say the request itself is wrong (400, 422) stop a chain. A redirect (the base URL
    /// points somewhere else, a captive proxy), a status outside HTTP's range, or any status this table does not
    /// know is an ``ProviderError/Kind/invalidResponse``: the provider did not answer as its API promises, so the
    /// chain fails over rather than give up.
    static func kind(forStatus status: Int) -> ProviderError.Kind {
        switch status {
        case 400, 422: return .invalidRequest
        case 401: return .authentication
        case 402, 403: return .permissionDenied
        case 404: return .notFound
        case 408: return .timeout
        case 409: return .serverError
        case 413: return .contextLengthExceeded
        case 429: return .rateLimited
        case 503, 529: return .overloaded
        case 504: return .timeout
        case 500...599: return .serverError
        default: return .invalidResponse
        }
    }

    /// The delay from `retry-after-ms`, or `retry-after` as seconds or an HTTP date; `nil` when absent or not a
    /// number or date.
    ///
    /// The value is a hint from outside: negative, non-finite and absurd values never trap. A value past
    /// ``ProviderError/longestRetryAfter`` is clamped to it.
    static func retryAfter(from headers: HTTPHeaders, now: Date = Date()) -> Duration? {
        if let value = headers.first(name: "retry-after-ms"), let ms = parseDelay(value) {
            return .clampedMilliseconds(ms, limit: ProviderError.longestRetryAfter)
        }
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
            return nil
        }
        if let seconds = parseDelay(value) {
            return .clampedMilliseconds(seconds * 1000, limit: ProviderError.longestRetryAfter)
        }
        if value.utf8.count <= 64, let date = parseHTTPDate(value) {
            return .clampedMilliseconds(date.timeIntervalSince(now) * 1000, limit: ProviderError.longestRetryAfter)
        }
        return nil
    }

    /// A non-negative decimal number (`1`, `0.5`, `1e3`); `nil` for anything else: NaN, infinity, negatives,
    /// hexadecimal (`0x10`, which `Double(_:)` would read as 16), signs, units. RFC 9110 asks for digits only; a
    /// fraction and an exponent are accepted because providers send `0.5` and the result is clamped anyway.
    private static func parseDelay(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.utf8.count <= 64, isDecimal(text.utf8) else { return nil }
        guard let value = Double(text), !value.isNaN, value >= 0 else { return nil }
        return value
    }

    /// `digits [. digits] [(e|E) [+|-] digits]`, with at least one digit before the exponent.
    private static func isDecimal(_ bytes: String.UTF8View) -> Bool {
        var digits = 0
        var index = bytes.startIndex
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        while index != bytes.endIndex, isDigit(bytes[index]) { digits += 1; index = bytes.index(after: index) }
        if index != bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
            index = bytes.index(after: index)
            while index != bytes.endIndex, isDigit(bytes[index]) { digits += 1; index = bytes.index(after: index) }
        }
        guard digits > 0 else { return false }
        if index != bytes.endIndex, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index = bytes.index(after: index)
            if index != bytes.endIndex, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index = bytes.index(after: index)
            }
            var exponentDigits = 0
            while index != bytes.endIndex, isDigit(bytes[index]) { exponentDigits += 1; index = bytes.index(after: index) }
            guard exponentDigits > 0 else { return false }
        }
        return index == bytes.endIndex
    }

    /// An HTTP-date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms); `nil` for anything else.
    ///
    /// Only printable ASCII can be one, and anything else never reaches `DateFormatter`: on Linux, Foundation's
    /// `date(from:)` leaks 128 bytes per call on a string with a character outside the Basic Multilingual Plane, so
    /// an upstream answering `Retry-After: x😀` cost the process 384 bytes (three formats) per response for good.
    static func parseHTTPDate(_ text: String) -> Date? {
        guard text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
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

    /// A duration written like Google's `"12s"` or `"0.5s"`, clamped like a `Retry-After`.
    static func parseGoogleDuration(_ text: String) -> Duration? {
        guard text.hasSuffix("s"), let seconds = parseDelay(String(text.dropLast())) else { return nil }
        return .clampedMilliseconds(seconds * 1000, limit: ProviderError.longestRetryAfter)
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
