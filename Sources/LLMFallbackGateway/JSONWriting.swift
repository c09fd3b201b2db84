import NIOCore

/// Hand-rolled JSON output straight into a `ByteBuffer`: the gateway's responses have fixed shapes, so writing
/// them field by field avoids an `Encodable` tree, a `Data` and a copy per response.
extension ByteBuffer {
    /// Writes ASCII text as is (keys, punctuation, constants).
    @inline(__always)
    mutating func writeRaw(_ text: StaticString) {
        text.withUTF8Buffer { _ = self.writeBytes($0) }
    }

    /// Writes `string` as a JSON string literal, quoted and escaped.
    mutating func writeJSONString(_ string: String) {
        writeInteger(UInt8(ascii: "\""))
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
        writeInteger(UInt8(ascii: "\""))
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
    mutating func writeJSONString(orNull string: String?) {
        if let string { writeJSONString(string) } else { writeRaw("null") }
    }

    /// Writes an integer.
    mutating func writeJSONInt(_ value: Int) {
        writeString(String(value))
    }

    /// Writes a number; `null` for NaN and infinities, which JSON cannot express.
    mutating func writeJSONDouble(_ value: Double) {
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
    mutating func writeJSONField(_ key: StaticString, int value: Int) {
        writeInteger(UInt8(ascii: ","))
        writeInteger(UInt8(ascii: "\""))
        writeRaw(key)
        writeRaw("\":")
        writeJSONInt(value)
    }
}
