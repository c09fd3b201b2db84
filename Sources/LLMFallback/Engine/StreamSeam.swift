/// Where a continuation joins the text already delivered, when another provider finishes a stream that broke
/// mid-answer (``MidStreamPolicy/continue``).
///
/// The continuation is asked to go on from exactly the delivered text, but a model may not: one that echoes its
/// prefill or starts its answer over repeats the delivered text from its beginning, and an instructed one often
/// repeats the end of it. So the continuation's first text is held until it can be compared, then:
///
/// - a continuation that begins with the whole delivered text (however long) has it cut;
/// - under an instructed continuation (`cutsRepeatedEnd`), the longest start of it that repeats the end of the
///   delivered text, from ``minimumOverlap`` up to ``maximumOverlap`` characters, is cut (a shorter one is kept:
///   `"ban"` + `"ana"` stays `"banana"`); a prefill continues the very text, so its overlaps are left alone
///   (`"----"` after `"----"` is a rule, not a repeat);
/// - whitespace the prefill had to leave out (Anthropic refuses a prefill that ends in it) and the continuation
///   put back is cut once.
struct StreamSeam: Sendable {
    /// The longest repeated end looked for.
    static let maximumOverlap = 200
    /// The shortest repeated end cut.
    static let minimumOverlap = 12

    private let delivered: String
    private let deliveredCount: Int
    /// The end of the delivered text: the most an instructed continuation may be found repeating.
    private let tail: [Character]
    /// The whitespace the delivered text ended in.
    private let trailingWhitespace: Substring
    private let cutsRepeatedEnd: Bool
    private var held: [ChatChunk] = []
    private var heldText = ""
    /// How far the held text (past the put-back whitespace) has matched the delivered text from its beginning;
    /// `nil` once it did not.
    private var matchedFromStart: String.Index?
    private var matchedCount = 0

    init(delivered: String, cutsRepeatedEnd: Bool) {
        self.delivered = delivered
        deliveredCount = delivered.count
        tail = Array(delivered.suffix(Self.maximumOverlap))
        var start = delivered.endIndex
        while start > delivered.startIndex, delivered[delivered.index(before: start)].isWhitespace {
            start = delivered.index(before: start)
        }
        trailingWhitespace = delivered[start...]
        self.cutsRepeatedEnd = cutsRepeatedEnd
        matchedFromStart = delivered.isEmpty ? nil : delivered.startIndex
    }

    /// The held text without the whitespace the continuation put back.
    private var comparable: Substring {
        let text = Substring(heldText)
        guard !trailingWhitespace.isEmpty, text.hasPrefix(trailingWhitespace) else { return text }
        return text.dropFirst(trailingWhitespace.count)
    }

    /// Holds `chunk`; `true` once enough is held to decide where the seam is (or nothing more of the text can come
    /// before something else: a tool call, the finish).
    mutating func hold(_ chunk: ChatChunk) -> Bool {
        held.append(chunk)
        heldText += chunk.content
        if chunk.finishReason != nil || !chunk.toolCallDeltas.isEmpty { return true }
        let text = comparable
        if var index = matchedFromStart {
            // Compare only what is new since the last chunk.
            for character in text.dropFirst(matchedCount).prefix(deliveredCount - matchedCount) {
                guard index < delivered.endIndex, delivered[index] == character else {
                    matchedFromStart = nil
                    break
                }
                index = delivered.index(after: index)
                matchedCount += 1
            }
            if matchedFromStart != nil { matchedFromStart = index }
            if matchedFromStart != nil && matchedCount < deliveredCount { return false }
            if matchedFromStart != nil { return true }
        }
        return !cutsRepeatedEnd || text.count >= tail.count
    }

    /// The held chunks, the repeated start of the continuation cut off (the first chunk carries the text); chunks
    /// left with nothing to carry are left out.
    mutating func release() -> [ChatChunk] {
        var text = comparable
        if matchedFromStart != nil && matchedCount == deliveredCount {
            text = text.dropFirst(deliveredCount)
        } else if cutsRepeatedEnd {
            let start = Array(text.prefix(tail.count))
            var length = start.count
            while length >= Self.minimumOverlap {
                if tail[(tail.count - length)...].elementsEqual(start[..<length]) { break }
                length -= 1
            }
            if length >= Self.minimumOverlap { text = text.dropFirst(length) }
        }
        var chunks = held
        held = []
        heldText = ""
        guard !chunks.isEmpty else { return [] }
        for index in chunks.indices { chunks[index].content = "" }
        chunks[0].content = String(text)
        return chunks.filter { $0.hasContent || $0.finishReason != nil || $0.usage != nil }
    }
}
