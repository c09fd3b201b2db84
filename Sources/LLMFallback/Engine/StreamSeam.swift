/// Where a continuation joins the text already delivered, when another provider finishes a stream that broke
/// mid-answer (``MidStreamPolicy/continue``).
///
/// The continuation is asked to go on from exactly the delivered text, but a model may repeat the end of it anyway
/// (an instructed continuation often repeats the last sentence, or starts over). So the continuation's first text is
/// held until there is enough of it to compare, then the longest start of it that repeats the end of the delivered
/// text, up to ``maximumOverlap`` characters, is cut; so is the whitespace a prefill left out and the continuation
/// put back. An overlap shorter than ``minimumOverlap`` is kept (`"ban"` + `"ana"` must stay `"banana"`), unless it
/// is the whole delivered text (an answer started over).
struct StreamSeam: Sendable {
    /// The longest repetition looked for.
    static let maximumOverlap = 200
    /// The shortest repetition cut, unless it repeats the whole delivered text.
    static let minimumOverlap = 12

    /// The end of the delivered text: the most a continuation may be found repeating.
    private let tail: [Character]
    /// Whether `tail` is the whole delivered text.
    private let tailIsWhole: Bool
    /// Whether the delivered text ended in whitespace (which a prefill leaves out, and a continuation puts back).
    private let endsInWhitespace: Bool
    private var held: [ChatChunk] = []
    private var heldText = ""

    init(delivered: String) {
        let suffix = delivered.suffix(Self.maximumOverlap)
        tail = Array(suffix)
        tailIsWhole = suffix.startIndex == delivered.startIndex
        endsInWhitespace = delivered.last?.isWhitespace ?? false
    }

    /// Holds `chunk`; `true` once enough is held to decide where the seam is (or nothing more of the text can come
    /// before something else: a tool call, the finish).
    mutating func hold(_ chunk: ChatChunk) -> Bool {
        held.append(chunk)
        heldText += chunk.content
        if chunk.finishReason != nil || !chunk.toolCallDeltas.isEmpty { return true }
        return heldText.drop(while: \.isWhitespace).count >= tail.count
    }

    /// The held chunks, the repeated start of the continuation cut off (the first chunk carries the text); chunks
    /// left with nothing to carry are left out.
    mutating func release() -> [ChatChunk] {
        var text = Substring(heldText)
        if endsInWhitespace { text = text.drop(while: \.isWhitespace) }
        let start = Array(text.prefix(tail.count))
        var length = start.count
        while length > 0 {
            let long = length >= Self.minimumOverlap || (tailIsWhole && length == tail.count)
            if long && tail[(tail.count - length)...].elementsEqual(start[..<length]) { break }
            length -= 1
        }
        text = text.dropFirst(length)
        var chunks = held
        held = []
        heldText = ""
        guard !chunks.isEmpty else { return [] }
        for index in chunks.indices { chunks[index].content = "" }
        chunks[0].content = String(text)
        return chunks.filter { $0.hasContent || $0.finishReason != nil || $0.usage != nil }
    }
}
