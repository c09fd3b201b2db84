/// The scanning both of the package's JSON readers share (``JSONParser``, which builds a tree, and
/// ``JSONReader``, which walks a document member by member): one grammar, one set of string rules.
///
/// Every function reads `bytes` from `index`, advances it past what it read, and says `nil` (or `false`) for
/// anything RFC 8259 does not allow: control characters and unknown escapes in strings, unpaired surrogates,
/// invalid UTF-8, numbers outside the grammar.
enum JSONScanning {
    static func skipWhitespace(_ bytes: UnsafeRawBufferPointer, at index: inout Int) {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Consumes `text` when it comes next.
    static func literal(_ text: StaticString, _ bytes: UnsafeRawBufferPointer, at index: inout Int) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let start = index
        let matches = text.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[start + $0] == expected[$0] }
        }
        if matches { index += count }
        return matches
    }

    /// A string literal starting at its opening quote, unescaped.
    static func string(_ bytes: UnsafeRawBufferPointer, at index: inout Int) -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var escaped = false
        var high: UInt8 = 0
        while true {
            guard index < bytes.count else { return nil }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
                continue
            }
            if byte < 0x20 { return nil }
            high |= byte
            index += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        index += 1
        if !escaped {
            return String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
        }
        // Escapes are ASCII, so the raw text is valid UTF-8 exactly when the unescaped text is.
        if high >= 0x80 && !isValidUTF8(raw) { return nil }
        var valid = true
        let text = String(unsafeUninitializedCapacity: raw.count) { output in
            guard let count = unescape(raw, into: output) else {
                valid = false
                return 0
            }
            return count
        }
        return valid ? text : nil
    }

    /// Skips a number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    ///
    /// - Returns: Whether it is a plain integer (no fraction, no exponent); `nil` when it is not a number.
    static func number(_ bytes: UnsafeRawBufferPointer, at index: inout Int) -> Bool? {
        var integral = true
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        } else {
            return nil
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            let digits = index
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            guard index > digits else { return nil }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            integral = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            let digits = index
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            guard index > digits else { return nil }
        }
        return integral
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    static func isValidUTF8(_ raw: UnsafeRawBufferPointer) -> Bool {
        var iterator = raw.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    static func hex4(_ bytes: UnsafeRawBufferPointer, at start: Int) -> UInt32? {
        var value: UInt32 = 0
        for offset in start..<start + 4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Writes the unescaped text of `raw` (a string literal's inside, valid UTF-8) at the start of `output`,
    /// which is at least as long.
    ///
    /// - Returns: The number of bytes written; `nil` for an unknown escape, bad hex digits or an unpaired surrogate.
    static func unescape(_ raw: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        var input = 0
        var written = 0
        while input < raw.count {
            let byte = raw[input]
            guard byte == UInt8(ascii: "\\") else {
                output[written] = byte
                written += 1
                input += 1
                continue
            }
            guard input + 1 < raw.count else { return nil }
            let escape = raw[input + 1]
            input += 2
            let plain: UInt8
            switch escape {
            case UInt8(ascii: "\""): plain = UInt8(ascii: "\"")
            case UInt8(ascii: "\\"): plain = UInt8(ascii: "\\")
            case UInt8(ascii: "/"): plain = UInt8(ascii: "/")
            case UInt8(ascii: "b"): plain = 0x08
            case UInt8(ascii: "f"): plain = 0x0C
            case UInt8(ascii: "n"): plain = 0x0A
            case UInt8(ascii: "r"): plain = 0x0D
            case UInt8(ascii: "t"): plain = 0x09
            case UInt8(ascii: "u"):
                guard input + 4 <= raw.count, var scalar = hex4(raw, at: input) else { return nil }
                input += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard input + 6 <= raw.count, raw[input] == UInt8(ascii: "\\"), raw[input + 1] == UInt8(ascii: "u"),
                        let low = hex4(raw, at: input + 2), (0xDC00..<0xE000).contains(low)
                    else { return nil }
                    input += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    return nil
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                for unit in unicode.utf8 {
                    output[written] = unit
                    written += 1
                }
                continue
            default:
                return nil
            }
            output[written] = plain
            written += 1
        }
        return written
    }
}
