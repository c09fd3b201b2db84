import Testing

@testable import LLMFallback

@Suite struct ServerSentEventParserTests {
    func parseSplitEverywhere(_ text: String) throws -> [[ServerSentEvent]] {
        let bytes = Array(text.utf8)
        var results: [[ServerSentEvent]] = []
        for split in 0...bytes.count {
            var parser = ServerSentEventParser()
            var events: [ServerSentEvent] = []
            try parser.feed(bytes[..<split], into: &events)
            try parser.feed(bytes[split...], into: &events)
            results.append(events)
        }
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for byte in bytes { try parser.feed([byte], into: &events) }
        results.append(events)
        return results
    }

    @Test(arguments: ["\n", "\r", "\r\n"])
    func lineEndings(_ end: String) throws {
        let text = "event: a\(end)data: one\(end)\(end)data: two\(end)data: three\(end)\(end)"
        for events in try parseSplitEverywhere(text) {
            #expect(events == [ServerSentEvent(event: "a", data: "one"), ServerSentEvent(data: "two\nthree")])
        }
    }

    @Test func commentsAndFieldsWithoutSpace() throws {
        let text = ": keep-alive\n\ndata:x\nid: 7\nretry: 100\nunknown: y\n\n"
        for events in try parseSplitEverywhere(text) {
            #expect(events == [ServerSentEvent(data: "x", id: "7")])
        }
    }

    @Test func utf8SplitInsideACharacter() throws {
        let text = "data: héllo 👋 wörld\n\n"
        for events in try parseSplitEverywhere(text) {
            #expect(events.map(\.data) == ["héllo 👋 wörld"])
        }
    }

    @Test func byteOrderMarkAndEmptyData() throws {
        var parser = ServerSentEventParser()
        let events = try parser.feed("\u{FEFF}data\n\ndata: a\n\n")
        #expect(events.map(\.data) == ["", "a"])
    }

    @Test func incompleteEventIsPending() throws {
        var parser = ServerSentEventParser()
        let events = try parser.feed("data: a\n\ndata: b")
        #expect(events.map(\.data) == ["a"])
        #expect(parser.hasPendingEvent)
    }
}

@Suite struct ServerSentEventByteOrderMarkTests {
    /// Found by FuzzSSE: a mark split across reads was kept in the first field's name, and that event was lost.
    @Test(arguments: [1, 2])
    func aByteOrderMarkSplitAcrossReadsIsStripped(_ firstRead: Int) throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("data: a\n\n".utf8)
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        try parser.feed(bytes[..<firstRead], into: &events)
        try parser.feed(bytes[firstRead...], into: &events)
        #expect(events.map(\.data) == ["a"])
    }

    @Test func aStreamThatOnlyLooksLikeAMarkKeepsItsBytes() throws {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        try parser.feed([0xEF], into: &events)
        try parser.feed(Array("X\ndata: b\n\n".utf8), into: &events)
        #expect(events.map(\.data) == ["b"])
    }
}
