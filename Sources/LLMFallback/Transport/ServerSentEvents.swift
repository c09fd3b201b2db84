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
public struct ServerSentEventParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    private var lastID: String?
    private var skipNextLF = false
    private var atStart = true

    /// Creates a parser.
    public init() {
        line.reserveCapacity(256)
    }

    /// Parses more bytes and appends the events they complete to `events`.
    public mutating func feed(_ buffer: ByteBuffer, into events: inout [ServerSentEvent]) {
        buffer.withUnsafeReadableBytes { bytes in
            feed(bytes, into: &events)
        }
    }

    /// Parses more bytes and appends the events they complete to `events`.
    public mutating func feed(_ bytes: some Collection<UInt8>, into events: inout [ServerSentEvent]) {
        var bytes = bytes[...]
        if atStart {
            if bytes.isEmpty { return }
            atStart = false
            // Strip a UTF-8 byte-order mark, when the stream opens with one.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        }
        for byte in bytes {
            if skipNextLF {
                skipNextLF = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0A:
                processLine(into: &events)
            case 0x0D:
                processLine(into: &events)
                skipNextLF = true
            default:
                line.append(byte)
            }
        }
    }

    /// Parses a complete chunk of text (convenience for tests and fixtures).
    public mutating func feed(_ text: String) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        feed(Array(text.utf8), into: &events)
        return events
    }

    /// Whether bytes of an unfinished event are pending (the stream ended mid-event when this is `true` at the end).
    public var hasPendingEvent: Bool { !line.isEmpty || hasData }

    private mutating func processLine(into events: inout [ServerSentEvent]) {
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
