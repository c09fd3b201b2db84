import NIOCore

/// One Server-Sent Event.
public struct ServerSentEvent: Hashable, Sendable {
    /// The `event:` field, `nil` when absent (the spec's "message").
    public var event: String?
    /// The `data:` lines joined with line feeds.
    public var data: String
    /// The last `id:` seen.
    public var id: String?

    /// Creates an event.
    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// An incremental Server-Sent Events parser, as the WHATWG spec describes it.
///
/// Feed it bytes as they arrive, split anywhere (inside a line, a CRLF pair or a UTF-8 character); it returns the
/// complete events. Line ends may be LF, CR or CRLF; comments (`:`) are skipped; multi-line `data:` is joined with
/// LF; a leading byte-order mark is ignored.
///
/// The bytes come from outside, so the parser is bounded: a line, or an event's data, longer than
/// ``maximumEventBytes`` (an upstream that streams without newlines) throws ``EventTooLarge`` instead of growing
/// without end.
public struct ServerSentEventParser: Sendable {
    /// An event, or a line, longer than the parser accepts.
    public struct EventTooLarge: Error, Sendable, Hashable, CustomStringConvertible {
        /// The limit that was crossed, in bytes.
        public var limit: Int

        public var description: String { "a stream event longer than \(limit) bytes" }
    }

    /// The longest line and the longest event data accepted, in bytes as read.
    ///
    /// An event's ``ServerSentEvent/data`` is those bytes decoded as UTF-8, each ill-formed sequence replaced with
    /// U+FFFD (three bytes), so it may take up to three times as many bytes as it was read in.
    public let maximumEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    private var lastID: String?
    private var skipNextLF = false
    private var atStart = true
    private var byteOrderMarkSeen = 0

    /// Creates a parser.
    ///
    /// - Parameter maximumEventBytes: The longest line and the longest event data accepted (16 MiB by default).
    public init(maximumEventBytes: Int = 16 << 20) {
        self.maximumEventBytes = max(1, maximumEventBytes)
        line.reserveCapacity(256)
    }

    /// Parses more bytes and appends the events they complete to `events`.
    ///
    /// - Throws: ``EventTooLarge`` when a line or an event crosses ``maximumEventBytes``; the parser is then
    ///   unusable (the stream is broken).
    public mutating func feed(_ buffer: ByteBuffer, into events: inout [ServerSentEvent]) throws(EventTooLarge) {
        try buffer.withUnsafeReadableBytes { (bytes) throws(EventTooLarge) in
            try feed(bytes, into: &events)
        }
    }

    /// Parses more bytes and appends the events they complete to `events`.
    ///
    /// - Throws: ``EventTooLarge`` when a line or an event crosses ``maximumEventBytes``.
    public mutating func feed(_ bytes: some Collection<UInt8>, into events: inout [ServerSentEvent]) throws(EventTooLarge) {
        var bytes = bytes[...]
        while atStart, let byte = bytes.first {
            // Strip a UTF-8 byte-order mark when the stream opens with one, even split across reads (found by
            // FuzzSSE: a first read shorter than the mark left it in the first field's name).
            if byte == Self.byteOrderMark[byteOrderMarkSeen] {
                byteOrderMarkSeen += 1
                bytes = bytes.dropFirst()
                if byteOrderMarkSeen == Self.byteOrderMark.count { atStart = false }
            } else {
                atStart = false
                for partial in Self.byteOrderMark[..<byteOrderMarkSeen] { try consume(partial, into: &events) }
            }
        }
        for byte in bytes { try consume(byte, into: &events) }
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    @inline(__always)
    private mutating func consume(_ byte: UInt8, into events: inout [ServerSentEvent]) throws(EventTooLarge) {
        if skipNextLF {
            skipNextLF = false
            if byte == 0x0A { return }
        }
        switch byte {
        case 0x0A:
            try processLine(into: &events)
        case 0x0D:
            try processLine(into: &events)
            skipNextLF = true
        default:
            if line.count >= maximumEventBytes { throw EventTooLarge(limit: maximumEventBytes) }
            line.append(byte)
        }
    }

    /// Parses a complete chunk of text (convenience for tests and fixtures).
    public mutating func feed(_ text: String) throws(EventTooLarge) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        try feed(Array(text.utf8), into: &events)
        return events
    }

    /// Ends the stream: an unfinished last line and event (a stream whose final event lacks its trailing blank
    /// line) are dispatched as if the blank line had come.
    public mutating func finish(into events: inout [ServerSentEvent]) throws(EventTooLarge) {
        if !line.isEmpty { try processLine(into: &events) }
        dispatch(into: &events)
    }

    /// Whether bytes of an unfinished event are pending (the stream ended mid-event when this is `true` at the end).
    public var hasPendingEvent: Bool { !line.isEmpty || hasData }

    private mutating func processLine(into events: inout [ServerSentEvent]) throws(EventTooLarge) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            dispatch(into: &events)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = colon.map { line[..<$0] } ?? line[...]
        var value = colon.map { line[($0 + 1)...] } ?? []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        if field.elementsEqual("data".utf8) {
            if data.count + value.count + 1 > maximumEventBytes { throw EventTooLarge(limit: maximumEventBytes) }
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventType = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("id".utf8) {
            if !value.contains(0) { lastID = String(decoding: value, as: UTF8.self) }
        }
        // "retry" and unknown fields are ignored.
    }

    private mutating func dispatch(into events: inout [ServerSentEvent]) {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventType = nil
        }
        guard hasData else { return }
        events.append(ServerSentEvent(event: eventType, data: String(decoding: data, as: UTF8.self), id: lastID))
    }
}
