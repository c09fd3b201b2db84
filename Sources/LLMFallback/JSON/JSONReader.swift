import NIOCore

/// A forward-only JSON reader over bytes, for the adapters' decoding fast paths: the caller walks the document
/// member by member into its own types, and values it has no use for are checked and skipped without being built.
///
/// It reads only the plain case and throws ``Unsupported`` at anything else, so that the `Codable` path, run
/// next, decides and words the error. What it accepts, `JSONDecoder` accepts with the same meaning; it gives up
/// where the two could differ:
///
/// - invalid JSON, trailing text, a byte order mark, nesting deeper than ``maximumDepth``;
/// - invalid UTF-8, control characters, unknown escapes and unpaired surrogates in any string;
/// - an escaped object key, and a member the caller reads appearing twice (``Members``);
/// - an integer read as `Int` that is not written as a plain integer of at most 18 digits (`JSONDecoder` also
///   takes `1.0` or `1e2` for an `Int`).
struct JSONReader {
    /// Not the plain case: the caller falls back to `JSONDecoder`.
    struct Unsupported: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0
    /// Deeper documents go to `JSONDecoder` (which allows 512 levels).
    static let maximumDepth = 64

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Reads the document in `buffer` with `body`, which must read exactly one value.
    ///
    /// - Returns: What `body` returns, or `nil` when it threw or text follows the value.
    static func read<T>(_ buffer: ByteBuffer, _ body: (inout JSONReader) throws -> T) -> T? {
        buffer.withUnsafeReadableBytes { read($0, body) }
    }

    /// Reads the document `text` with `body`, which must read exactly one value.
    static func read<T>(_ text: String, _ body: (inout JSONReader) throws -> T) -> T? {
        var text = text
        return text.withUTF8 { read(UnsafeRawBufferPointer($0), body) }
    }

    private static func read<T>(_ bytes: UnsafeRawBufferPointer, _ body: (inout JSONReader) throws -> T) -> T? {
        var reader = JSONReader(bytes)
        do {
            let value = try body(&reader)
            reader.skipWhitespace()
            return reader.index == bytes.count ? value : nil
        } catch {
            return nil
        }
    }

    // MARK: Structure

    /// An object key, valid while the document is read.
    struct Key {
        fileprivate let bytes: UnsafeRawBufferPointer

        /// Whether the key is `name`, for `switch key { case "id": ... }`.
        static func ~= (name: StaticString, key: Key) -> Bool {
            guard name.utf8CodeUnitCount == key.bytes.count else { return false }
            return name.withUTF8Buffer { expected in
                for offset in 0..<expected.count where expected[offset] != key.bytes[offset] { return false }
                return true
            }
        }
    }

    /// The members an object reader has seen, so that a repeated one sends the document to `JSONDecoder` (which
    /// keeps the first of repeated keys).
    struct Members {
        private var seen: UInt32 = 0

        /// Creates an empty set.
        init() {}

        /// Notes member number `bit` (0 to 31) of the caller's own numbering.
        ///
        /// - Throws: ``Unsupported`` when it was seen before.
        mutating func insert(_ bit: UInt32) throws {
            let mask: UInt32 = 1 << bit
            guard seen & mask == 0 else { throw Unsupported() }
            seen |= mask
        }
    }

    /// Reads an object, calling `member` with each key; `member` must read or skip exactly the key's value.
    mutating func readObject(_ member: (inout JSONReader, Key) throws -> Void) throws {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw Unsupported() }
        try enter()
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            let key = try readKey()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Unsupported() }
            index += 1
            try member(&self, key)
            skipWhitespace()
            guard index < bytes.count else { throw Unsupported() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                depth -= 1
                return
            } else {
                throw Unsupported()
            }
        }
    }

    /// Reads an array, calling `element` for each element; `element` must read or skip exactly one value.
    mutating func readArray(_ element: (inout JSONReader) throws -> Void) throws {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { throw Unsupported() }
        try enter()
        index += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return
        }
        while true {
            try element(&self)
            skipWhitespace()
            guard index < bytes.count else { throw Unsupported() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return
            } else {
                throw Unsupported()
            }
        }
    }

    /// Reads `null` as `nil`, or an array of what `element` reads.
    mutating func readOptionalArray<T>(_ element: (inout JSONReader) throws -> T) throws -> [T]? {
        if readNull() { return nil }
        var elements: [T] = []
        try readArray { reader in elements.append(try element(&reader)) }
        return elements
    }

    /// Reads `null` as `nil`, or what `value` reads.
    mutating func readOptional<T>(_ value: (inout JSONReader) throws -> T) throws -> T? {
        if readNull() { return nil }
        return try value(&self)
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maximumDepth else { throw Unsupported() }
    }

    // MARK: Values

    /// The next value's first byte (`{`, `[`, `"`, a digit or `-`, `t`, `f`, `n`), after whitespace.
    mutating func peek() throws -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw Unsupported() }
        return bytes[index]
    }

    /// Consumes a `null` and says so, or leaves anything else.
    mutating func readNull() -> Bool {
        skipWhitespace()
        guard index + 4 <= bytes.count, bytes[index] == UInt8(ascii: "n"), bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l")
        else { return false }
        index += 4
        return true
    }

    /// Reads `null` as `nil`, or a string.
    mutating func readOptionalString() throws -> String? {
        if readNull() { return nil }
        return try readString()
    }

    /// Reads `null` as `nil`, or an integer.
    mutating func readOptionalInt() throws -> Int? {
        if readNull() { return nil }
        return try readInt()
    }

    /// Reads a string.
    mutating func readString() throws -> String {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Unsupported() }
        index += 1
        let start = index
        var escaped = false
        var high: UInt8 = 0
        while true {
            guard index < bytes.count else { throw Unsupported() }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
                continue
            }
            if byte < 0x20 { throw Unsupported() }
            high |= byte
            index += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        index += 1
        if !escaped {
            guard let text = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else { throw Unsupported() }
            return text
        }
        // Escapes are ASCII, so the raw text is valid UTF-8 exactly when the unescaped text is.
        if high >= 0x80 && !Self.isValidUTF8(raw) { throw Unsupported() }
        var valid = true
        let text = String(unsafeUninitializedCapacity: raw.count) { output in
            guard let count = Self.unescape(raw, into: output) else {
                valid = false
                return 0
            }
            return count
        }
        guard valid else { throw Unsupported() }
        return text
    }

    /// Reads an integer written as a plain integer (`-?(0|[1-9][0-9]*)`) of at most 18 digits.
    mutating func readInt() throws -> Int {
        skipWhitespace()
        let start = index
        let integral = try scanNumber()
        var position = start
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard integral, index - position <= 18 else { throw Unsupported() }
        var value = 0
        while position < index {
            value = value * 10 + Int(bytes[position] &- UInt8(ascii: "0"))
            position += 1
        }
        return negative ? -value : value
    }

    /// Checks and skips one value of any kind.
    ///
    /// - Parameter asJSONValue: Whether `JSONDecoder` would decode the value as a ``JSONValue`` (inside a content
    ///   array) rather than skip it: its strings are then decoded, and only plain integers are taken as numbers.
    mutating func skipValue(asJSONValue: Bool = false) throws {
        switch try peek() {
        case UInt8(ascii: "{"):
            try readObject { reader, _ in try reader.skipValue(asJSONValue: asJSONValue) }
        case UInt8(ascii: "["):
            try readArray { reader in try reader.skipValue(asJSONValue: asJSONValue) }
        case UInt8(ascii: "\""):
            if asJSONValue { _ = try readString() } else { try skipString() }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            if asJSONValue {
                _ = try readInt()
            } else {
                _ = try scanNumber()
            }
        }
    }

    // MARK: Scanning

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func literal(_ text: StaticString) throws {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw Unsupported() }
        let matches = text.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
        }
        guard matches else { throw Unsupported() }
        index += count
    }

    /// A key: a string without escapes.
    private mutating func readKey() throws -> Key {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Unsupported() }
        index += 1
        let start = index
        var high: UInt8 = 0
        while true {
            guard index < bytes.count else { throw Unsupported() }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { throw Unsupported() }
            high |= byte
            index += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        index += 1
        if high >= 0x80 && !Self.isValidUTF8(raw) { throw Unsupported() }
        return Key(bytes: raw)
    }

    /// Checks and skips a string without building it.
    private mutating func skipString() throws {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Unsupported() }
        index += 1
        let start = index
        var high: UInt8 = 0
        while true {
            guard index < bytes.count else { throw Unsupported() }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { throw Unsupported() }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 6 <= bytes.count, Self.hex4(bytes, at: index + 2) != nil else { throw Unsupported() }
                    index += 6
                default:
                    throw Unsupported()
                }
                continue
            }
            if byte < 0x20 { throw Unsupported() }
            high |= byte
            index += 1
        }
        if high >= 0x80 && !Self.isValidUTF8(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) { throw Unsupported() }
        index += 1
    }

    /// Skips a number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    ///
    /// - Returns: Whether it is a plain integer (no fraction, no exponent).
    private mutating func scanNumber() throws -> Bool {
        var integral = true
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw Unsupported() }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if Self.isDigit(bytes[index]) {
            while index < bytes.count && Self.isDigit(bytes[index]) { index += 1 }
        } else {
            throw Unsupported()
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            let digits = index
            while index < bytes.count && Self.isDigit(bytes[index]) { index += 1 }
            guard index > digits else { throw Unsupported() }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            integral = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            let digits = index
            while index < bytes.count && Self.isDigit(bytes[index]) { index += 1 }
            guard index > digits else { throw Unsupported() }
        }
        return integral
    }

    @inline(__always)
    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    private static func isValidUTF8(_ raw: UnsafeRawBufferPointer) -> Bool {
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

    private static func hex4(_ bytes: UnsafeRawBufferPointer, at start: Int) -> UInt32? {
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
    private static func unescape(_ raw: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
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
