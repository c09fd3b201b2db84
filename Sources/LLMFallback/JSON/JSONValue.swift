import Foundation
import NIOCore

/// A JSON value of any shape: the free-form parts of a chat (tool parameter schemas, tool arguments,
/// provider-specific fields) that have no fixed Swift type.
///
/// Objects keep their members in order (``JSONObject``), and a number that neither `Int` nor `Double` holds
/// exactly keeps its text (``number(_:)``), so a value parsed and written again is the same JSON: what a client
/// sent reaches the provider unchanged.
///
/// ```swift
/// let schema: JSONValue = [
///     "type": "object",
///     "properties": ["city": ["type": "string"]],
///     "required": ["city"],
/// ]
/// ```
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// An object, its members in order.
    case object(JSONObject)
    /// A number kept as its JSON text, because neither `Int` nor `Double` holds it exactly: an integer beyond
    /// `Int`'s range, or more than 15 significant digits. Parsing makes `.int` and `.double` for every other
    /// number; the text must be a JSON number (anything else is written as `null`).
    case number(String)

    /// Parses JSON text.
    ///
    /// - Parameter text: UTF-8 JSON text.
    /// - Throws: ``JSONSyntaxError`` when the text is not valid JSON, is nested deeper than 512 levels, or
    ///   repeats a key within an object.
    public init(parsing text: String) throws(JSONSyntaxError) {
        var text = text
        self = try text.withUTF8 { bytes in
            Result { () throws(JSONSyntaxError) in try JSONParser.parse(UnsafeRawBufferPointer(bytes)) }
        }.get()
    }

    /// Parses JSON bytes.
    ///
    /// - Throws: ``JSONSyntaxError``, as ``init(parsing:)-(String)``.
    public init(parsing data: Data) throws(JSONSyntaxError) {
        self = try data.withUnsafeBytes { bytes in
            Result { () throws(JSONSyntaxError) in try JSONParser.parse(bytes) }
        }.get()
    }

    /// Parses the readable bytes of a buffer.
    package init(parsing buffer: ByteBuffer) throws(JSONSyntaxError) {
        self = try JSONParser.parse(buffer)
    }

    /// The value as compact JSON text, objects' members in their order.
    ///
    /// A NaN or infinite `Double`, which JSON cannot express, is written as `null`.
    public var jsonString: String {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeJSONValueLeniently(self)
        return String(buffer: buffer)
    }

    /// The member named `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The members, in order, when this is an object.
    public var members: JSONObject? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The string when this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as `Int` when this is an integral number.
    public var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9e15: return Int(value)
        case .number(let text): return Int(text)
        default: return nil
        }
    }

    /// The number as `Double` when this is a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        case .number(let text): return Double(text)
        default: return nil
        }
    }

    /// The Boolean when this is a Boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members as a dictionary (without their order) when this is an object; ``members`` keeps the order.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value.dictionary }
        return nil
    }
}

/// `Codable` conformance, for `JSONValue` members of the caller's own `Codable` types. `JSONDecoder` and
/// `JSONEncoder` do not keep an object's member order (objects decoded this way have their keys sorted), and
/// ``number(_:)`` goes through `Decimal`; ``init(parsing:)-(String)`` and ``jsonString`` keep both.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(JSONObject(value))
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "Not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value.dictionary)
        case .number(let text):
            if let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) {
                try container.encode(decimal)
            } else {
                try container.encode(Double(text) ?? .nan)
            }
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An object with the literal's members in the literal's order (a repeated key keeps its last value).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements))
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { jsonString }
}

/// Optional members read from a ``JSONValue`` tree: absent and `null` are `nil`, a value of another type makes
/// the whole read fail (the outer `nil`), as `JSONDecoder`'s `decodeIfPresent` throws.
enum JSONField {
    /// A wrapper, so that "absent" (`Present(value: nil)`) and "wrong type" (`nil`) are told apart.
    struct Present<T> {
        var value: T?
    }

    static func string(_ value: JSONValue?) -> Present<String>? {
        switch value {
        case nil, .null?: return Present(value: nil)
        case .string(let text)?: return Present(value: text)
        default: return nil
        }
    }

    /// An integer as `JSONDecoder` reads an `Int`: a number with an integral value within `Int`'s range.
    static func int(_ value: JSONValue?) -> Present<Int>? {
        switch value {
        case nil, .null?: return Present(value: nil)
        case .int(let number)?: return Present(value: number)
        case .double(let number)? where number.rounded() == number && abs(number) < 9e15: return Present(value: Int(number))
        default: return nil
        }
    }

    static func optional<T>(_ value: JSONValue?, _ read: (JSONValue) -> T?) -> Present<T>? {
        switch value {
        case nil, .null?: return Present(value: nil)
        case let value?: return read(value).map { Present(value: $0) }
        }
    }
}
