import NIOCore

/// A JSON value parsed by ``FastJSONParser``: the request fast path's intermediate form.
package enum JSONNode {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    /// The member named `key` (the last one, when a key repeats).
    package subscript(key: String) -> JSONNode? {
        guard case .object(let members) = self else { return nil }
        var found: JSONNode?
        for member in members where member.key == key { found = member.value }
        return found
    }

    package var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// As the library's free-form value.
    package var jsonValue: JSONValue {
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
/// It only says whether the text is valid; the gateway's `Codable` path (`ChatCompletionRequest.decode(_:using:)`)
/// runs when it is not, to say precisely what is wrong.
package struct FastJSONParser {
    package struct Invalid: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0
    /// Deeper nesting is refused (as `JSONDecoder` does), so a hostile body cannot exhaust the stack.
    package static let maximumDepth = 512

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses a whole document; `nil` when it is not valid JSON.
    package static func parse(_ buffer: ByteBuffer) -> JSONNode? {
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
