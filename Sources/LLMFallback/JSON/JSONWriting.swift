import NIOCore

/// Hand-rolled JSON output straight into a `ByteBuffer`: the gateway's responses and the OpenAI request body have
/// fixed shapes, so writing them field by field avoids an `Encodable` tree, a `Data` and a copy per message.
extension ByteBuffer {
    /// Writes ASCII text as is (keys, punctuation, constants).
    @inline(__always)
    package mutating func writeRaw(_ text: StaticString) {
        text.withUTF8Buffer { _ = self.writeBytes($0) }
    }

    /// Writes `string` as a JSON string literal, quoted and escaped.
    package mutating func writeJSONString(_ string: String) {
        writeInteger(UInt8(ascii: "\""))
        writeJSONStringContents(string)
        writeInteger(UInt8(ascii: "\""))
    }

    /// Writes `string` escaped as inside a JSON string literal, without the quotes, so that a literal can be
    /// assembled from pieces.
    ///
    /// The escaping is `JSONEncoder`'s with `.withoutEscapingSlashes`: `"` and `\` escaped, the control characters
    /// below U+0020 as `\b`, `\t`, `\n`, `\f`, `\r` or `\u00xx` (lowercase hex), everything else (`/`, DEL,
    /// non-ASCII UTF-8) as is.
    package mutating func writeJSONStringContents(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            var start = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    if start < index {
                        writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
                    }
                    writeEscaped(byte)
                    start = index + 1
                }
                index += 1
            }
            if start < bytes.count {
                writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...])))
            }
        }
    }

    private mutating func writeEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): writeRaw("\\\"")
        case UInt8(ascii: "\\"): writeRaw("\\\\")
        case UInt8(ascii: "\n"): writeRaw("\\n")
        case UInt8(ascii: "\r"): writeRaw("\\r")
        case UInt8(ascii: "\t"): writeRaw("\\t")
        case 0x08: writeRaw("\\b")
        case 0x0C: writeRaw("\\f")
        default:
            let hex: StaticString = "0123456789abcdef"
            writeRaw("\\u00")
            hex.withUTF8Buffer { digits in
                writeInteger(digits[Int(byte >> 4)])
                writeInteger(digits[Int(byte & 0xF)])
            }
        }
    }

    /// Writes `string` quoted, or `null`.
    package mutating func writeJSONString(orNull string: String?) {
        if let string { writeJSONString(string) } else { writeRaw("null") }
    }

    /// Writes an integer.
    package mutating func writeJSONInt(_ value: Int) {
        writeString(String(value))
    }

    /// Writes a number, integral values without a fraction; `null` for NaN and infinities, which JSON cannot
    /// express. (The gateway's style; ``writeJSONNumber(_:)`` writes a `Double` as `JSONEncoder` does.)
    package mutating func writeJSONDouble(_ value: Double) {
        guard value.isFinite else {
            writeRaw("null")
            return
        }
        if value == value.rounded(), abs(value) < 1e15 {
            writeString(String(Int(value)))
        } else {
            writeString(String(value))
        }
    }

    /// Writes `value`'s key and value, with a leading comma: `,"key":value`.
    package mutating func writeJSONField(_ key: StaticString, int value: Int) {
        writeInteger(UInt8(ascii: ","))
        writeInteger(UInt8(ascii: "\""))
        writeRaw(key)
        writeRaw("\":")
        writeJSONInt(value)
    }
}

/// A value `JSONEncoder` refuses to encode: a NaN or infinite `Double`, which JSON cannot express (or a
/// ``JSONValue/number(_:)`` whose text is not a JSON number).
package struct NonFiniteNumber: Error {}

extension ByteBuffer {
    /// Writes a number exactly as `JSONEncoder` writes a `Double`: the shortest text that reads back as the same
    /// value (Swift's `description`), without a trailing `.0` (`1.0` as `1`, `-0.0` as `-0`, `0.2` as `0.2`,
    /// `1e-7` as `1e-07`, `1e21` as `1e+21`).
    ///
    /// - Throws: ``NonFiniteNumber`` for NaN and infinities, which `JSONEncoder` refuses too.
    package mutating func writeJSONNumber(_ value: Double) throws(NonFiniteNumber) {
        guard value.isFinite else { throw NonFiniteNumber() }
        var text = value.description
        text.withUTF8 { bytes in
            var count = bytes.count
            if count > 2 && bytes[count - 2] == UInt8(ascii: ".") && bytes[count - 1] == UInt8(ascii: "0") { count -= 2 }
            writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<count])))
        }
    }

    /// Writes `true` or `false`.
    package mutating func writeJSONBool(_ value: Bool) {
        if value { writeRaw("true") } else { writeRaw("false") }
    }

    /// Writes a free-form value, objects' members in their order and ``JSONValue/number(_:)`` as its text.
    ///
    /// - Throws: ``NonFiniteNumber`` for a NaN or infinite `Double` anywhere in `value`, or a number whose text is
    ///   not a JSON number.
    package mutating func writeJSONValue(_ value: JSONValue) throws(NonFiniteNumber) {
        try writeJSONValue(value, lenient: false)
    }

    /// Writes a free-form value as ``writeJSONValue(_:)`` does, with `null` for the numbers JSON cannot express.
    package mutating func writeJSONValueLeniently(_ value: JSONValue) {
        do {
            try writeJSONValue(value, lenient: true)
        } catch {
            // Unreachable: the lenient writer never throws.
        }
    }

    private mutating func writeJSONValue(_ value: JSONValue, lenient: Bool) throws(NonFiniteNumber) {
        switch value {
        case .null: writeRaw("null")
        case .bool(let bool): writeJSONBool(bool)
        case .int(let int): writeJSONInt(int)
        case .double(let double):
            if lenient && !double.isFinite { writeRaw("null") } else { try writeJSONNumber(double) }
        case .number(let text):
            if isJSONNumber(text) {
                writeString(text)
            } else if lenient {
                writeRaw("null")
            } else {
                throw NonFiniteNumber()
            }
        case .string(let string): writeJSONString(string)
        case .array(let elements):
            writeInteger(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { writeInteger(UInt8(ascii: ",")) }
                first = false
                try writeJSONValue(element, lenient: lenient)
            }
            writeInteger(UInt8(ascii: "]"))
        case .object(let members):
            writeInteger(UInt8(ascii: "{"))
            var first = true
            for (key, member) in members {
                if !first { writeInteger(UInt8(ascii: ",")) }
                first = false
                writeJSONString(key)
                writeInteger(UInt8(ascii: ":"))
                try writeJSONValue(member, lenient: lenient)
            }
            writeInteger(UInt8(ascii: "}"))
        }
    }
}

/// Whether `text` is a number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
package func isJSONNumber(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    var index = 0
    func digits() -> Int {
        let start = index
        while index < bytes.count && bytes[index] &- UInt8(ascii: "0") < 10 { index += 1 }
        return index - start
    }
    if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count else { return false }
    if bytes[index] == UInt8(ascii: "0") { index += 1 } else if digits() == 0 { return false }
    if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
        index += 1
        guard digits() > 0 else { return false }
    }
    if index < bytes.count && bytes[index] | 0x20 == UInt8(ascii: "e") {
        index += 1
        if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
        guard digits() > 0 else { return false }
    }
    return index == bytes.count
}
