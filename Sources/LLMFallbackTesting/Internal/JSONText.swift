/// A JSON value that keeps object keys in the order they were written.
///
/// The mock server builds every body it sends from this type, so that bodies read like the providers' own
/// (`id` first, `usage` last) and strings are escaped correctly. ``verbatim(_:)`` embeds JSON text that the
/// caller already holds, such as a tool call's arguments, without re-encoding it.
enum JSONText: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([JSONText])
    case object([(key: String, value: JSONText)])
    /// JSON text inserted as is.
    case verbatim(String)

    /// A string, or `null` when `value` is `nil`.
    static func string(_ value: String?) -> JSONText {
        value.map(JSONText.string) ?? .null
    }

    /// The compact serialisation of this value.
    var serialized: String {
        var output = ""
        self.write(to: &output)
        return output
    }

    private func write(to output: inout String) {
        switch self {
        case .null:
            output += "null"
        case .bool(let value):
            output += value ? "true" : "false"
        case .int(let value):
            output += String(value)
        case .string(let value):
            Self.writeString(value, to: &output)
        case .verbatim(let text):
            output += text
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                element.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                Self.writeString(member.key, to: &output)
                output += ":"
                member.value.write(to: &output)
            }
            output += "}"
        }
    }

    private static func writeString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}

extension JSONText: ExpressibleByStringLiteral {
    init(stringLiteral value: String) {
        self = .string(value)
    }
}

extension JSONText: ExpressibleByIntegerLiteral {
    init(integerLiteral value: Int) {
        self = .int(value)
    }
}

extension JSONText: ExpressibleByBooleanLiteral {
    init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

extension JSONText: ExpressibleByArrayLiteral {
    init(arrayLiteral elements: JSONText...) {
        self = .array(elements)
    }
}

extension JSONText: ExpressibleByDictionaryLiteral {
    init(dictionaryLiteral elements: (String, JSONText)...) {
        self = .object(elements.map { (key: $0.0, value: $0.1) })
    }
}
