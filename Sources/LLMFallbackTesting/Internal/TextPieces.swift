/// Splits answer text into stream pieces and counts its words.
enum TextPieces {
    /// One piece per word, each word after the first keeping the whitespace before it.
    ///
    /// `"Hello from gpt"` becomes `["Hello", " from", " gpt"]`; joining the pieces gives back the text.
    static func words(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var previousWasWhitespace = false
        for character in text {
            if character.isWhitespace && !previousWasWhitespace && !current.isEmpty {
                pieces.append(current)
                current = ""
            }
            current.append(character)
            previousWasWhitespace = character.isWhitespace
        }
        if current.allSatisfy(\.isWhitespace), !pieces.isEmpty {
            // Trailing whitespace belongs to the last word rather than making a piece of its own.
            pieces[pieces.count - 1] += current
        } else {
            pieces.append(current)
        }
        return pieces
    }

    /// `count` pieces of nearly equal length (fewer when the text is shorter than `count` characters).
    static func split(_ text: String, into count: Int) -> [String] {
        let characters = Array(text)
        let count = max(1, min(count, characters.count))
        let base = characters.count / count
        let remainder = characters.count % count
        var pieces: [String] = []
        var start = 0
        for index in 0..<count {
            let length = base + (index < remainder ? 1 : 0)
            pieces.append(String(characters[start..<(start + length)]))
            start += length
        }
        return pieces
    }

    /// Pieces of at most `size` characters, at least one piece.
    static func split(_ text: String, maximumLength size: Int) -> [String] {
        let characters = Array(text)
        guard !characters.isEmpty else { return [""] }
        return stride(from: 0, to: characters.count, by: size).map {
            String(characters[$0..<min($0 + size, characters.count)])
        }
    }

    /// The number of whitespace-separated words.
    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: \.isWhitespace).count
    }
}
