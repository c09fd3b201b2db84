import LLMFallback
import Testing

@testable import LLMFallbackTesting

/// How answer text is cut into stream pieces.
struct TextPiecesTests {
    @Test(arguments: [
        ("Hello from gpt", ["Hello", " from", " gpt"]),
        ("  leading  and trailing ", ["  leading", "  and", " trailing "]),
        ("one", ["one"]),
        ("", [""]),
        ("line\nbreak", ["line", "\nbreak"]),
    ])
    func wordsKeepTheirLeadingWhitespace(text: String, pieces: [String]) {
        #expect(TextPieces.words(text) == pieces)
        #expect(TextPieces.words(text).joined() == text)
    }

    @Test func splitIntoCount() {
        #expect(TextPieces.split("abcdefg", into: 3) == ["abc", "de", "fg"])
        #expect(TextPieces.split("ab", into: 5) == ["a", "b"])
        #expect(TextPieces.split("abc", into: 0) == ["abc"])
    }

    @Test func splitByLength() {
        #expect(TextPieces.split("abcdefghij", maximumLength: 4) == ["abcd", "efgh", "ij"])
        #expect(TextPieces.split("", maximumLength: 4) == [""])
    }

    /// The mock renders through the library's writer (its own JSON text is gone): the same escaping.
    @Test func jsonEscaping() {
        let value: JSONValue = ["text": .string("a\"b\\c\nd\u{01}é"), "list": [1, true, .null]]
        #expect(value.jsonString == #"{"text":"a\"b\\c\nd\u0001é","list":[1,true,null]}"#)
    }
}
