import LLMFallback
import NIOCore
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A complete request read from a connection, with what the answer needs to know beyond the record.
struct IncomingRequest: Sendable {
    var recorded: RecordedRequest
    /// Whether an OpenAI stream should end with a usage chunk.
    var includeUsage: Bool
}

/// Turns a request head and body into an ``IncomingRequest``: route, model, stream flag.
enum RequestParser {
    static func parse(head: HTTPRequestHead, body: ByteBuffer, connection: Int) -> IncomingRequest {
        let (path, queryString) = Self.splitURI(head.uri)
        let bodyBytes = Array(body.readableBytesView)
        let probe = BodyProbe.decode(body)
        let route = Route.match(method: head.method, path: path)
        let record = RecordedRequest(
            method: head.method.rawValue,
            path: path,
            query: Self.parseQuery(queryString),
            headers: head.headers.map { (name: $0.name, value: $0.value) },
            body: bodyBytes,
            model: route?.model ?? probe.model ?? "",
            format: route?.format ?? .unknown,
            isStream: route?.isStream ?? probe.stream,
            connection: connection
        )
        return IncomingRequest(recorded: record, includeUsage: probe.includeUsage)
    }

    private static func splitURI(_ uri: String) -> (path: String, query: Substring) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), uri[uri.index(after: mark)...])
    }

    private static func parseQuery(_ query: Substring) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(parts[0], plusIsSpace: true)
            parameters[name] = parts.count > 1 ? percentDecoded(parts[1], plusIsSpace: true) : ""
        }
        return parameters
    }
}

/// Decodes `%XX` escapes (and `+` as a space in query strings); malformed escapes are kept as they are.
func percentDecoded(_ text: Substring, plusIsSpace: Bool = false) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        switch byte {
        case UInt8(ascii: "+") where plusIsSpace:
            bytes.append(UInt8(ascii: " "))
        case UInt8(ascii: "%"):
            let high = iterator.next()
            let low = iterator.next()
            if let high, let low, let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
                high.map { bytes.append($0) }
                low.map { bytes.append($0) }
            }
        default:
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A route of the mock server, recognised from method and path.
private struct Route {
    var format: MockWireFormat
    /// The model named by the path (Gemini, Azure), if the path names one.
    var model: String?
    /// Whether the path itself says the request streams (Gemini); `nil` when the body decides.
    var isStream: Bool?

    static func match(method: HTTPMethod, path: String) -> Route? {
        guard method == .POST else { return nil }
        switch path {
        case "/v1/chat/completions":
            return Route(format: .openAI)
        case "/v1/messages", "/v1/messages/count_tokens":
            return Route(format: .anthropic)
        default:
            break
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        // "/openai/deployments/{deployment}/chat/completions" splits into ["", "openai", "deployments", d, "chat", "completions"].
        if segments.count == 6, segments[1] == "openai", segments[2] == "deployments", !segments[3].isEmpty,
            segments[4] == "chat", segments[5] == "completions"
        {
            return Route(format: .azure, model: percentDecoded(segments[3]))
        }
        // "/v1beta/models/{model}:{method}" splits into ["", "v1beta", "models", "{model}:{method}"].
        if segments.count == 4, segments[1] == "v1beta", segments[2] == "models",
            let colon = segments[3].lastIndex(of: ":")
        {
            let model = percentDecoded(segments[3][..<colon])
            switch segments[3][segments[3].index(after: colon)...] {
            case "generateContent" where !model.isEmpty:
                return Route(format: .gemini, model: model, isStream: false)
            case "streamGenerateContent" where !model.isEmpty:
                return Route(format: .gemini, model: model, isStream: true)
            default:
                return nil
            }
        }
        return nil
    }

    private init(format: MockWireFormat, model: String? = nil, isStream: Bool? = nil) {
        self.format = format
        self.model = model
        self.isStream = isStream
    }
}

/// The few body fields the server looks at, each read leniently: a missing or mistyped field reads as absent.
private struct BodyProbe {
    var model: String?
    var stream = false
    var includeUsage = false

    /// The fields of `body`, or none when it is not a JSON object (read by the package's one JSON parser, so a
    /// body with a repeated key reads as no fields at all, as the gateway refuses it).
    static func decode(_ body: ByteBuffer) -> BodyProbe {
        var probe = BodyProbe()
        guard body.readableBytes > 0, case .object(let members)? = try? JSONParser.parse(body) else { return probe }
        if case .string(let model)? = members["model"] { probe.model = model }
        if case .bool(let stream)? = members["stream"] { probe.stream = stream }
        if case .object(let options)? = members["stream_options"], case .bool(let usage)? = options["include_usage"] {
            probe.includeUsage = usage
        }
        return probe
    }
}
