import LLMFallback
import NIOCore

/// A JSON value parsed by ``FastJSONParser``: the request fast path's intermediate form.
enum JSONNode {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    /// The member named `key` (the last one, when a key repeats).
    subscript(key: String) -> JSONNode? {
        guard case .object(let members) = self else { return nil }
        var found: JSONNode?
        for member in members where member.key == key { found = member.value }
        return found
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// As the library's free-form value.
    var jsonValue: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .array(let elements): return .array(elements.map(\.jsonValue))
        case .object(let members):
            var object: [String: JSONValue] = [:]
            object.reserveCapacity(members.count)
            for member in members { object[member.key] = member.value.jsonValue }
            return .object(object)
        }
    }
}

/// A small, strict JSON parser over a `ByteBuffer`, for the request path: several times faster than `JSONDecoder`
/// on chat requests, because it builds the few values a request has and nothing else.
///
/// It only says whether the text is valid; the `Codable` path (``ChatCompletionRequest/decode(_:using:)``) runs
/// when it is not, to say precisely what is wrong.
struct FastJSONParser {
    struct Invalid: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0
    /// Deeper nesting is refused (as `JSONDecoder` does), so a hostile body cannot exhaust the stack.
    static let maximumDepth = 512

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses a whole document; `nil` when it is not valid JSON.
    static func parse(_ buffer: ByteBuffer) -> JSONNode? {
        buffer.withUnsafeReadableBytes { bytes in
            var parser = FastJSONParser(bytes: bytes)
            do {
                parser.skipWhitespace()
                let value = try parser.value()
                parser.skipWhitespace()
                return parser.index == bytes.count ? value : nil
            } catch {
                return nil
            }
        }
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func value() throws(Invalid) -> JSONNode {
        guard index < bytes.count else { throw Invalid() }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            return try number()
        }
    }

    private mutating func literal(_ text: StaticString) throws(Invalid) {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw Invalid() }
        let matches = text.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
        }
        guard matches else { throw Invalid() }
        index += count
    }

    private mutating func object() throws(Invalid) -> JSONNode {
        depth += 1
        guard depth <= Self.maximumDepth else { throw Invalid() }
        defer { depth -= 1 }
        index += 1
        var members: [(key: String, value: JSONNode)] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Invalid() }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Invalid() }
            index += 1
            skipWhitespace()
            members.append((key, try value()))
            skipWhitespace()
            guard index < bytes.count else { throw Invalid() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            } else {
                throw Invalid()
            }
        }
    }

    private mutating func array() throws(Invalid) -> JSONNode {
        depth += 1
        guard depth <= Self.maximumDepth else { throw Invalid() }
        defer { depth -= 1 }
        index += 1
        var elements: [JSONNode] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value())
            skipWhitespace()
            guard index < bytes.count else { throw Invalid() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            } else {
                throw Invalid()
            }
        }
    }

    /// A string literal starting at the opening quote.
    private mutating func string() throws(Invalid) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = try Self.text(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw Invalid() }
            index += 1
        }
        guard index < bytes.count else { throw Invalid() }
        var scratch: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: scratch, as: UTF8.self) else { throw Invalid() }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw Invalid() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): scratch.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): scratch.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw Invalid() }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Invalid() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw Invalid()
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw Invalid() }
                    scratch.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw Invalid()
                }
            default:
                if byte < 0x20 { throw Invalid() }
                scratch.append(byte)
                index += 1
            }
        }
        throw Invalid()
    }

    /// UTF-8 text; invalid UTF-8 is refused (as `JSONDecoder` refuses it).
    private static func text(_ raw: UnsafeRawBufferPointer) throws(Invalid) -> String {
        guard let text = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else { throw Invalid() }
        return text
    }

    private mutating func hex4() throws(Invalid) -> UInt32 {
        guard index + 4 <= bytes.count else { throw Invalid() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Invalid()
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// A number, in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    private mutating func number() throws(Invalid) -> JSONNode {
        let start = index
        var integral = true
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw Invalid() }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[index]) {
            while index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        } else {
            throw Invalid()
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            let digits = index
            while index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw Invalid() }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            integral = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            let digits = index
            while index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw Invalid() }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else { throw Invalid() }
        return .double(value)
    }
}

// MARK: - The request from parsed JSON

extension ChatCompletionRequest {
    /// The fast path: a request built from ``FastJSONParser``'s tree, or `nil` when anything is unexpected (the
    /// `Codable` path then decides, and explains).
    init?(node root: JSONNode) {
        guard case .object = root, let model = root["model"]?.string else { return nil }
        guard case .array(let rawMessages)? = root["messages"], !rawMessages.isEmpty else { return nil }
        if let n = root["n"], !n.isNull {
            guard case .int(1) = n else { return nil }
        }
        var messages: [Message] = []
        messages.reserveCapacity(rawMessages.count)
        for raw in rawMessages {
            guard let message = Self.message(raw) else { return nil }
            messages.append(message)
        }
        var request = ChatRequest(messages: messages)
        guard Self.optionalDouble(root["temperature"], into: &request.temperature),
            Self.optionalDouble(root["top_p"], into: &request.topP)
        else { return nil }
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        guard Self.optionalInt(root["max_tokens"], into: &maxTokens),
            Self.optionalInt(root["max_completion_tokens"], into: &maxCompletionTokens),
            Self.optionalInt(root["seed"], into: &request.seed)
        else { return nil }
        request.maxTokens = maxCompletionTokens ?? maxTokens
        switch root["stop"] {
        case nil, .null?: break
        case .string(let stop)?: request.stop = [stop]
        case .array(let stops)?:
            for stop in stops {
                guard let text = stop.string else { return nil }
                request.stop.append(text)
            }
        default: return nil
        }
        switch root["tools"] {
        case nil, .null?: break
        case .array(let tools)?:
            for tool in tools {
                guard let parsed = Self.tool(tool) else { return nil }
                request.tools.append(parsed)
            }
        default: return nil
        }
        switch root["tool_choice"] {
        case nil, .null?: break
        case .string("auto")?: request.toolChoice = .auto
        case .string("none")?: request.toolChoice = ToolChoice.none
        case .string("required")?: request.toolChoice = .required
        case let choice? where choice["function"]?["name"]?.string != nil:
            request.toolChoice = .tool(choice["function"]!["name"]!.string!)
        default: return nil
        }
        switch root["parallel_tool_calls"] {
        case nil, .null?: break
        case .bool(let value)?: request.parallelToolCalls = value
        default: return nil
        }
        switch root["response_format"] {
        case nil, .null?: break
        case let format?:
            switch format["type"]?.string {
            case "text": request.responseFormat = .text
            case "json_object": request.responseFormat = .jsonObject
            case "json_schema":
                guard let schema = format["json_schema"], let name = schema["name"]?.string else { return nil }
                var strict: Bool?
                switch schema["strict"] {
                case nil, .null?: break
                case .bool(let value)?: strict = value
                default: return nil
                }
                let body = schema["schema"].flatMap { $0.isNull ? nil : $0.jsonValue } ?? ["type": "object"]
                request.responseFormat = .jsonSchema(name: name, schema: body, strict: strict)
            default: return nil
            }
        }
        switch root["user"] {
        case nil, .null?: break
        case .string(let user)?: request.user = user
        default: return nil
        }
        var stream = false
        switch root["stream"] {
        case nil, .null?: break
        case .bool(let value)?: stream = value
        default: return nil
        }
        var includeUsage = false
        switch root["stream_options"] {
        case nil, .null?: break
        case let options? where { if case .object = options { true } else { false } }():
            switch options["include_usage"] {
            case nil, .null?: break
            case .bool(let value)?: includeUsage = value
            default: return nil
            }
        default: return nil
        }
        self.init(model: model, request: request, stream: stream, includeUsage: includeUsage)
    }

    private static func optionalDouble(_ node: JSONNode?, into value: inout Double?) -> Bool {
        switch node {
        case nil, .null?: return true
        case .int(let number)?: value = Double(number)
        case .double(let number)?: value = number
        default: return false
        }
        return true
    }

    private static func optionalInt(_ node: JSONNode?, into value: inout Int?) -> Bool {
        switch node {
        case nil, .null?: return true
        case .int(let number)?: value = number
        default: return false
        }
        return true
    }

    private static func message(_ node: JSONNode) -> Message? {
        guard case .object = node, let rawRole = node["role"]?.string else { return nil }
        let role: Role
        switch rawRole {
        case "system", "developer": role = .system
        case "user": role = .user
        case "assistant": role = .assistant
        case "tool": role = .tool
        default: return nil
        }
        var message = Message(role: role, content: .text(""))
        switch node["content"] {
        case nil, .null?:
            guard role == .assistant else { return nil }
        case .string(let text)?:
            message.content = .text(text)
        case .array(let rawParts)?:
            var parts: [ContentPart] = []
            parts.reserveCapacity(rawParts.count)
            for raw in rawParts {
                switch raw["type"]?.string {
                case "text":
                    guard let text = raw["text"]?.string else { return nil }
                    parts.append(.text(text))
                case "refusal":
                    guard let text = raw["refusal"]?.string else { return nil }
                    parts.append(.text(text))
                case "image_url":
                    switch raw["image_url"] {
                    case .string(let url)?:
                        parts.append(.image(.url(url, detail: nil)))
                    case let image? where image["url"]?.string != nil:
                        var detail: String?
                        switch image["detail"] {
                        case nil, .null?: break
                        case .string(let value)?: detail = value
                        default: return nil
                        }
                        parts.append(.image(.url(image["url"]!.string!, detail: detail)))
                    default: return nil
                    }
                default: return nil
                }
            }
            message.content = .parts(parts)
        default:
            return nil
        }
        switch node["name"] {
        case nil, .null?: break
        case .string(let name)?: message.name = name
        default: return nil
        }
        switch node["tool_calls"] {
        case nil, .null?: break
        case .array(let calls)?:
            for call in calls {
                guard let id = call["id"]?.string, let function = call["function"], let name = function["name"]?.string else { return nil }
                var arguments = "{}"
                switch function["arguments"] {
                case nil, .null?: break
                case .string(let value)?: arguments = value
                default: return nil
                }
                message.toolCalls.append(ToolCall(id: id, name: name, arguments: arguments))
            }
        default: return nil
        }
        switch node["tool_call_id"] {
        case nil, .null?: if role == .tool { return nil }
        case .string(let id)?: message.toolCallID = id
        default: return nil
        }
        return message
    }

    private static func tool(_ node: JSONNode) -> Tool? {
        switch node["type"] {
        case nil, .null?, .string("function")?: break
        default: return nil
        }
        guard let function = node["function"], let name = function["name"]?.string else { return nil }
        var tool = Tool(name: name)
        switch function["description"] {
        case nil, .null?: break
        case .string(let description)?: tool.description = description
        default: return nil
        }
        switch function["parameters"] {
        case nil, .null?: break
        case let parameters?: tool.parameters = parameters.jsonValue
        }
        switch function["strict"] {
        case nil, .null?: break
        case .bool(let strict)?: tool.strict = strict
        default: return nil
        }
        return tool
    }
}
