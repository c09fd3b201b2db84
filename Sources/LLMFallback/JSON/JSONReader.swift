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
        guard let text = JSONScanning.string(bytes, at: &index) else { throw Unsupported() }
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
        JSONScanning.skipWhitespace(bytes, at: &index)
    }

    private mutating func literal(_ text: StaticString) throws {
        guard JSONScanning.literal(text, bytes, at: &index) else { throw Unsupported() }
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
        if high >= 0x80 && !JSONScanning.isValidUTF8(raw) { throw Unsupported() }
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
                    guard index + 6 <= bytes.count, JSONScanning.hex4(bytes, at: index + 2) != nil else { throw Unsupported() }
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
        if high >= 0x80 && !JSONScanning.isValidUTF8(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) { throw Unsupported() }
        index += 1
    }

    /// Skips a number in JSON's grammar.
    ///
    /// - Returns: Whether it is a plain integer (no fraction, no exponent).
    private mutating func scanNumber() throws -> Bool {
        guard let integral = JSONScanning.number(bytes, at: &index) else { throw Unsupported() }
        return integral
    }
}
