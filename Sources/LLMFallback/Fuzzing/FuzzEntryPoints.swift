import Foundation
import NIOCore
import NIOHTTP1

// MARK: - Entry points for the fuzz targets
//
// The libFuzzer targets of FuzzTesting/ (a package of their own) cannot see this module's internal parsers, so
// each target calls one of these functions with the fuzzer's bytes. They are also what the replay test
// (Tests/LLMFallbackTests/FuzzFailCaseTests.swift) runs every kept crash through, without the fuzzer.
//
// An entry point runs its parser on the bytes and ignores what it throws: a typed error is the right answer to
// bad input. A trap, a hang or memory without bound is a finding. Where it is cheap, an entry point also checks
// what the parser promises (the same events however the bytes are split, the fast reader agreeing with
// `JSONDecoder`, no negative token counts) and stops with `preconditionFailure("fuzz invariant: ...")` when a
// promise is broken, so that libFuzzer reports it like a crash.

/// Entry points for the fuzz targets under `FuzzTesting/`: bytes in, the parser run, thrown errors ignored.
///
/// Not API: the `Fuzzing` SPI exists for the fuzz targets and the crash replay test.
@_spi(Fuzzing)
public enum FuzzEntryPoints {
    /// The entry points by fuzz target name (the names of `FuzzTesting/Sources/*` and `FuzzTesting/FailCases/*`).
    public static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "FuzzSSE": serverSentEvents,
        "FuzzJSONReader": jsonReader,
        "FuzzFastJSON": fastJSON,
        "FuzzOpenAIResponseReader": openAIResponseReader,
        "FuzzOpenAIResponse": { decodeResponse(.openAI, $0) },
        "FuzzOpenAIStream": { decodeStream(.openAI, $0) },
        "FuzzOpenAIError": { classifyError(.openAI, $0) },
        "FuzzAnthropicResponse": { decodeResponse(.anthropic, $0) },
        "FuzzAnthropicStream": { decodeStream(.anthropic, $0) },
        "FuzzAnthropicError": { classifyError(.anthropic, $0) },
        "FuzzGeminiResponse": { decodeResponse(.gemini, $0) },
        "FuzzGeminiStream": { decodeStream(.gemini, $0) },
        "FuzzGeminiError": { classifyError(.gemini, $0) },
    ]

    // MARK: Server-Sent Events

    /// Feeds a stream to ``ServerSentEventParser`` whole, and again split into pieces, and checks that both give
    /// the same events (the parser promises that bytes may be split anywhere).
    ///
    /// The first byte chooses the piece size (1 to 256 bytes); the rest is the stream.
    public static func serverSentEvents(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let stream = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let pieceSize = Int(first) + 1

        // A small bound, so that inputs cross it: the parser must refuse them the same way however they arrive.
        let limit = 512
        var whole = ServerSentEventParser(maximumEventBytes: limit)
        var wholeEvents: [ServerSentEvent] = []
        let wholeRefused = (try? whole.feed(stream, into: &wholeEvents)) == nil

        var split = ServerSentEventParser(maximumEventBytes: limit)
        var splitEvents: [ServerSentEvent] = []
        var splitRefused = false
        var start = 0
        while start < stream.count, !splitRefused {
            let end = min(stream.count, start + pieceSize)
            splitRefused = (try? split.feed(UnsafeRawBufferPointer(rebasing: stream[start..<end]), into: &splitEvents)) == nil
            start = end
        }
        check(wholeRefused == splitRefused, "an SSE stream is refused whole but not split (or the reverse)")
        if wholeRefused { return }
        // The bound is on the bytes read: decoding replaces each ill-formed UTF-8 sequence (one byte or more) with
        // U+FFFD, three bytes, so an event's data may take up to three times the bound, and no more.
        for event in wholeEvents {
            check(event.data.utf8.count <= 3 * limit, "an SSE event is longer than three times the parser's bound")
        }
        check(wholeEvents == splitEvents, "SSE events differ when the stream is split into \(pieceSize)-byte pieces")
        check(whole.hasPendingEvent == split.hasPendingEvent, "SSE pending state differs when the stream is split")
        for event in wholeEvents {
            // Only CR and LF end a line in SSE (not U+2028 or NEL, which `Character.isNewline` also counts).
            check(!event.data.utf8.contains(0x0D), "an SSE event's data holds a carriage return")
            check(!(event.event ?? "").utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }), "an SSE event name holds a line break")
            check(!(event.id ?? "").utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }), "an SSE event id holds a line break")
        }
    }

    // MARK: JSON readers

    /// Walks a document with ``JSONReader`` and checks what the reader promises: what it skips, `JSONDecoder`
    /// accepts (checking the syntax of skipped members only, as the reader does); what it skips as a content
    /// array's ``JSONValue``, `JSONDecoder` reads as a `JSONValue`; and the strings and structure it reads are the
    /// ones `JSONDecoder` reads.
    public static func jsonReader(_ input: UnsafeRawBufferPointer) {
        let buffer = ByteBuffer(bytes: input)
        let data = Data(input)
        // The plain skip, as the adapters use it for members they do not read: JSONDecoder checks the syntax of
        // such members, not their numbers' range or their strings' escapes.
        if JSONReader.read(buffer, { reader in try reader.skipValue() }) != nil {
            check((try? WireJSON.decoder.decode(Ignored.self, from: data)) != nil, "JSONReader skipped a document that JSONDecoder rejects")
        }
        let value = try? WireJSON.decoder.decode(JSONValue.self, from: data)
        // Values inside a content array, which JSONDecoder reads as a JSONValue.
        if JSONReader.read(buffer, { reader in try reader.skipValue(asJSONValue: true) }) != nil {
            check(value != nil, "JSONReader.skipValue(asJSONValue: true) accepted a document that JSONDecoder cannot read as a JSONValue")
        }
        // A walk that reads every string and builds the document's shape (numbers are only skipped).
        guard let walked = JSONReader.read(buffer, { reader in try walk(&reader, depth: 0) }), let value else { return }
        // A repeated key is collapsed by JSONDecoder: the shapes cannot be compared (JSONParser refuses it).
        guard (try? JSONParser.parse(buffer)) != nil else { return }
        let expected = Shape(value)
        check(walked.description == expected.description, "JSONReader read \(walked) where JSONDecoder read \(expected)")
    }

    /// Any JSON document, read without looking inside.
    private struct Ignored: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    /// The document's shape as ``JSONReader`` reads it: object keys are not visible outside the reader, so an
    /// object is the multiset of its members' shapes, and numbers are not told apart.
    indirect enum Shape: CustomStringConvertible {
        case object([Shape])
        case array([Shape])
        case string(String)
        case number
        case bool(Bool)
        case null

        init(_ value: JSONValue) {
            switch value {
            case .object(let members): self = .object(members.values.map(Shape.init))
            case .array(let elements): self = .array(elements.map(Shape.init))
            case .string(let text): self = .string(text)
            case .int, .double, .number: self = .number
            case .bool(let flag): self = .bool(flag)
            case .null: self = .null
            }
        }

        var description: String {
            switch self {
            case .object(let members): return "{" + members.map(\.description).sorted().joined(separator: ",") + "}"
            case .array(let elements): return "[" + elements.map(\.description).joined(separator: ",") + "]"
            case .string(let text): return String(reflecting: text)
            case .number: return "#"
            case .bool(let flag): return flag ? "true" : "false"
            case .null: return "null"
            }
        }
    }

    private static func walk(_ reader: inout JSONReader, depth: Int) throws -> Shape {
        switch try reader.peek() {
        case UInt8(ascii: "{"):
            var members: [Shape] = []
            try reader.readObject { reader, _ in members.append(try walk(&reader, depth: depth + 1)) }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [Shape] = []
            try reader.readArray { reader in elements.append(try walk(&reader, depth: depth + 1)) }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(try reader.readString())
        case UInt8(ascii: "n"):
            guard reader.readNull() else { throw JSONReader.Unsupported() }
            return .null
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            let flag = try reader.peek() == UInt8(ascii: "t")
            try reader.skipValue()
            return .bool(flag)
        default:
            try reader.skipValue()
            return .number
        }
    }

    /// Parses a document with the package's ``JSONParser`` and, when it accepts it, checks that `JSONDecoder`
    /// reads the same value, and that writing the value and parsing it again gives back the same members in the
    /// same order.
    public static func fastJSON(_ input: UnsafeRawBufferPointer) {
        guard let value = try? JSONParser.parse(input) else { return }
        let decoded = try? WireJSON.decoder.decode(JSONValue.self, from: Data(input))
        check(decoded != nil || containsExactNumber(value), "JSONParser accepted a document that JSONDecoder rejects")
        if let decoded, !containsExactNumber(value) {
            check(sameValue(value, decoded), "JSONParser read \(value) where JSONDecoder read \(decoded)")
        }
        var written = ByteBuffer()
        do {
            try written.writeJSONValue(value)
        } catch {
            preconditionFailure("fuzz invariant: JSONParser produced a value that cannot be written: \(value)")
        }
        let reparsed = try? JSONParser.parse(written)
        check(reparsed != nil, "JSONParser rejects what writeJSONValue wrote: \(String(buffer: written))")
        if let reparsed {
            check(reparsed == value, "a JSON value changed in a write and parse round trip")
        }
    }

    /// Whether `value` holds a ``JSONValue/number(_:)`` (which `JSONDecoder` reads as a rounded `Double`, or
    /// refuses when it overflows).
    package static func containsExactNumber(_ value: JSONValue) -> Bool {
        switch value {
        case .number: return true
        case .array(let elements): return elements.contains(where: containsExactNumber)
        case .object(let members): return members.values.contains(where: containsExactNumber)
        default: return false
        }
    }

    /// Equality with numbers compared by value (`1` and `1.0` are the same number).
    package static func sameValue(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)): return Double(a) == b
        case (.double(let a), .double(let b)): return a == b
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { sameValue($0, $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map { sameValue(value, $0) } ?? false }
        default: return lhs == rhs
        }
    }

    /// Reads a completion with the hand-written reader and, when it accepts it, checks that `JSONDecoder` reads the
    /// same value (the reader promises exactly that); the stream chunk reader likewise.
    public static func openAIResponseReader(_ input: UnsafeRawBufferPointer) {
        let buffer = ByteBuffer(bytes: input)
        if let fast = OpenAICompletion(fastParsing: buffer) {
            let decoded = try? WireJSON.decoder.decode(OpenAICompletion.self, from: Data(input))
            check(decoded != nil, "the fast completion reader accepted a body that JSONDecoder rejects")
            if let decoded { check(fast == decoded, "the fast completion reader read \(fast), JSONDecoder \(decoded)") }
        }
        let text = String(decoding: input, as: UTF8.self)
        if let fast = OpenAIStreamChunk(fastParsing: text) {
            let decoded = try? WireJSON.decoder.decode(OpenAIStreamChunk.self, from: Data(text.utf8))
            check(decoded != nil, "the fast stream chunk reader accepted data that JSONDecoder rejects")
            if let decoded { check(fast == decoded, "the fast stream chunk reader read \(fast), JSONDecoder \(decoded)") }
        }
    }

    // MARK: Wire formats

    /// The provider every adapter entry point decodes for.
    static func provider(_ format: WireFormat) -> ResolvedProvider {
        let kind: ProviderKind
        switch format {
        case .anthropic: kind = ProviderKind.named("anthropic")!
        case .gemini: kind = ProviderKind.named("google")!
        default: kind = ProviderKind.named("openai")!
        }
        let provider = Provider(kind.name, model: "fuzz-model", apiKey: "fuzz-key", baseURL: "http://127.0.0.1:1")
        return ResolvedProvider(provider: provider, kind: kind, baseURL: "http://127.0.0.1:1", apiKey: "fuzz-key")
    }

    /// Decodes a successful response body with the format's adapter, as the chain does after a 2xx.
    ///
    /// The input is the body.
    public static func decodeResponse(_ format: WireFormat, _ input: UnsafeRawBufferPointer) {
        let provider = provider(format)
        do throws(ProviderError) {
            let response = try format.adapter.decodeResponse(ByteBuffer(bytes: input), headers: [:], for: provider)
            if let usage = response.usage { checkUsage(usage) }
        } catch {
            checkError(error, status: nil)
        }
    }

    /// Parses a stream's bytes as Server-Sent Events and decodes each event with the format's stream decoder, as
    /// the chain does, up to the first error.
    ///
    /// The input is the response body.
    public static func decodeStream(_ format: WireFormat, _ input: UnsafeRawBufferPointer) {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        guard (try? parser.feed(input, into: &events)) != nil, (try? parser.finish(into: &events)) != nil else { return }
        var decoder = format.adapter.makeStreamDecoder(for: provider(format))
        for event in events {
            do throws(ProviderError) {
                guard let chunk = try decoder.decode(event) else { continue }
                if let usage = chunk.usage { checkUsage(usage) }
                for delta in chunk.toolCallDeltas {
                    check(delta.index >= 0, "a stream decoder produced tool call index \(delta.index)")
                }
            } catch {
                checkError(error, status: nil)
                return
            }
        }
        _ = decoder.isComplete
    }

    /// Classifies an error response with the format's adapter, as the chain does for a status outside 2xx.
    ///
    /// The input is a small HTTP-like text: the status on the first line, then `name: value` header lines, an
    /// empty line, and the body. Without an empty line, the input after the status line is the body; a first
    /// line that is not a number gives status 500.
    public static func classifyError(_ format: WireFormat, _ input: UnsafeRawBufferPointer) {
        let (status, headers, body) = errorResponse(input)
        let error = format.adapter.classifyError(status: status, headers: headers, body: body)
        checkError(error, status: status)
    }

    /// Splits an error target's input into status, headers and body.
    static func errorResponse(_ input: UnsafeRawBufferPointer) -> (Int, HTTPHeaders, ByteBuffer) {
        let bytes = Array(input)
        let newline = UInt8(ascii: "\n")
        guard let firstEnd = bytes.firstIndex(of: newline) else {
            return (500, [:], ByteBuffer(bytes: bytes))
        }
        let statusText = String(decoding: bytes[..<firstEnd], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let status = statusText.utf8.count <= 3 ? Int(statusText) ?? 500 : 500
        var headers = HTTPHeaders()
        var position = firstEnd + 1
        var bodyStart = position
        // Header lines up to an empty line; none when there is no empty line.
        var lines: [(String, String)] = []
        var sawEmptyLine = false
        while position < bytes.count {
            let end = bytes[position...].firstIndex(of: newline) ?? bytes.count
            let line = bytes[position..<end]
            position = min(bytes.count, end + 1)
            if line.isEmpty || line == [UInt8(ascii: "\r")] {
                sawEmptyLine = true
                break
            }
            let text = String(decoding: line, as: UTF8.self)
            // Only a name NIO's response parser would pass on: a token (RFC 9110), never empty; `HTTPHeaders`
            // traps on a name that is not ASCII, which no real response can give the classifier.
            if let colon = text.firstIndex(of: ":"), colon > text.startIndex, text[..<colon].utf8.allSatisfy(isTokenByte) {
                lines.append((String(text[..<colon]), String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
        }
        if sawEmptyLine {
            for (name, value) in lines { headers.add(name: name, value: value) }
            bodyStart = position
        }
        return (status, headers, ByteBuffer(bytes: bytes[bodyStart...]))
    }

    /// Whether `byte` may be in a header name (RFC 9110 `tchar`).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    private static func checkUsage(_ usage: Usage) {
        check(usage.promptTokens >= 0 && usage.completionTokens >= 0 && usage.totalTokens >= 0, "negative token counts in \(usage)")
        check((usage.cachedTokens ?? 0) >= 0 && (usage.reasoningTokens ?? 0) >= 0, "negative token counts in \(usage)")
    }

    private static func checkError(_ error: ProviderError, status: Int?) {
        if let status { check(error.status == status, "an error classified for status \(status) says \(error.status.map { String($0) } ?? "none")") }
        if let delay = error.retryAfter { check(delay >= .zero, "a negative retry delay \(delay)") }
        // Describing the error must not trap either (it is logged).
        _ = error.description
    }

    // MARK: Support

    package static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
        if !condition() { preconditionFailure("fuzz invariant: \(message())") }
    }
}

// MARK: - HTTP client

/// One ``HTTP1Connection`` with its real pipeline (the request encoder, NIO's response decoder and the connection
/// handler), for a fuzz target that puts it in an `EmbeddedChannel` (this module does not depend on
/// `NIOEmbedded`, so the channel is the caller's) and feeds the server's bytes.
///
/// ```swift
/// let channel = EmbeddedChannel()
/// let harness = HTTPClientFuzzHarness(eventLoop: channel.eventLoop)
/// try harness.addHandlers(to: channel.pipeline.syncOperations)
/// try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
/// harness.sendRequest()
/// try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))
/// ```
@_spi(Fuzzing)
public final class HTTPClientFuzzHarness {
    private let pool: HTTPConnectionPool
    private let key = ConnectionKey(isTLS: false, host: "fuzz.invalid", port: 80)
    private let connection: HTTP1Connection
    /// The requests sent, kept so that they end only when the harness does.
    private var requests: [RequestExecution] = []

    /// Creates a connection for a channel on `eventLoop`; reading pauses past 64 buffered body bytes.
    public init(eventLoop: any EventLoop) {
        pool = HTTPConnectionPool(configuration: .init(maximumBufferedBodyBytes: 64))
        connection = HTTP1Connection(pool: pool, key: key, eventLoop: eventLoop)
    }

    /// Adds the encoder, the decoder and the connection to a pipeline, as the pool's connect does.
    public func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(HTTPRequestEncoder())
        try pipeline.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
        try pipeline.addHandler(connection)
        // Counted by the pool, which then forgets the connection when it closes (an idle one included).
        connection.adopt()
    }

    /// Sends a request on the connection. Nobody waits for its response: a streamed body's reader is gone from the
    /// start, so the connection drains it.
    ///
    /// Send one request per harness: a request that fails on a connection that already answered one is retried on
    /// a new connection, which the pool would really open.
    public func sendRequest() {
        let request = RequestExecution(
            pool: pool,
            key: key,
            head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions", headers: ["host": "fuzz.invalid"]),
            body: ByteBuffer(string: "{}"),
            timeout: .seconds(30)
        )
        requests.append(request)
        _ = request.attach(to: connection)
    }
}
