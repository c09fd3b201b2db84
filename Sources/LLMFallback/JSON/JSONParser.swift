import NIOCore

/// Why bytes are not a JSON document ``JSONValue`` accepts.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The byte offset where it was found.
    public var offset: Int
    /// The repeated key, when the document repeats a key within an object.
    public var duplicateKey: String?
    /// How deep the object with the repeated key is: 1 for the document's own members.
    public var duplicateKeyDepth: Int?

    public var description: String { "\(message) (at byte \(offset))" }
}

/// The package's one JSON tree parser: bytes to a ``JSONValue``, several times faster than `JSONDecoder`.
///
/// Strict, with the package's one rule for every reader: RFC 8259 syntax, valid UTF-8 and escapes, nesting at
/// most ``maximumDepth`` levels, and **no key repeated within an object** (parsers disagree on which of two
/// repeated members counts, so a body with a repeated `"model"` could route one way here and another way
/// upstream; refusing it is the only answer that cannot be exploited). Numbers keep their exact value (see
/// ``JSONValue/number(_:)``). ``JSONReader`` is the forward-only reader of the same toolkit, for the adapters' fast
/// paths, with the same rules.
package struct JSONParser {
    private typealias Invalid = JSONSyntaxError

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0
    /// Deeper nesting is refused (as `JSONDecoder` does), so a hostile body cannot exhaust the stack.
    package static let maximumDepth = 512

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses a whole document.
    package static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.invalid("text after the JSON value") }
        return value
    }

    /// Parses the readable bytes of `buffer`.
    package static func parse(_ buffer: ByteBuffer) throws(JSONSyntaxError) -> JSONValue {
        try buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(JSONSyntaxError) in try parse(bytes) }
        }.get()
    }

    private func invalid(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, offset: index)
    }

    private mutating func skipWhitespace() {
        JSONScanning.skipWhitespace(bytes, at: &index)
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard index < bytes.count else { throw invalid("invalid JSON") }
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

    private mutating func literal(_ text: StaticString) throws(JSONSyntaxError) {
        guard JSONScanning.literal(text, bytes, at: &index) else { throw invalid("invalid JSON") }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        depth += 1
        guard depth <= Self.maximumDepth else { throw invalid("nested deeper than \(Self.maximumDepth) levels") }
        defer { depth -= 1 }
        index += 1
        var members = JSONObject()
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw invalid("invalid JSON") }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw invalid("invalid JSON") }
            index += 1
            skipWhitespace()
            let keyOffset = index
            guard members.appendNew(key, try value()) else {
                throw JSONSyntaxError(
                    message: "the key '\(key.prefix(64))' appears twice in one object",
                    offset: keyOffset, duplicateKey: key, duplicateKeyDepth: depth)
            }
            skipWhitespace()
            guard index < bytes.count else { throw invalid("invalid JSON") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            } else {
                throw invalid("invalid JSON")
            }
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        depth += 1
        guard depth <= Self.maximumDepth else { throw invalid("nested deeper than \(Self.maximumDepth) levels") }
        defer { depth -= 1 }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value())
            skipWhitespace()
            guard index < bytes.count else { throw invalid("invalid JSON") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            } else {
                throw invalid("invalid JSON")
            }
        }
    }

    /// A string literal starting at the opening quote.
    private mutating func string() throws(JSONSyntaxError) -> String {
        let start = index
        guard let text = JSONScanning.string(bytes, at: &index) else {
            index = start
            throw invalid("invalid string: a control character, an unknown escape, an unpaired surrogate or invalid UTF-8")
        }
        return text
    }

    /// The significant digits of the number in `range` (leading zeros and the exponent left out).
    private func significantDigits(_ range: Range<Int>) -> Int {
        var count = 0
        var leading = true
        for position in range {
            let byte = bytes[position]
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { break }
            guard byte &- UInt8(ascii: "0") < 10 else { continue }
            if leading && byte == UInt8(ascii: "0") { continue }
            leading = false
            count += 1
        }
        return count
    }

    /// A number, in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    private mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        guard let integral = JSONScanning.number(bytes, at: &index) else { throw invalid("invalid JSON") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int(text) { return .int(value) }
        // Up to 15 significant digits, a Double gives the same number back when written (shortest form).
        if significantDigits(start..<index) <= 15, let value = Double(text), value.isFinite { return .double(value) }
        return .number(text)
    }
}
