import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import LLMFallback

/// ``NIOHTTPClientTransport`` held to AsyncHTTPClient's safety rules, over loopback against raw scripted servers:
/// no request sent twice, no pooled connection left paused, headers validated before writing, a bounded wait for a
/// connection, and hostile responses as typed errors.
@Suite struct NIOHTTPClientTransportSafetyTests {
    // MARK: Finding 5: never re-sent once written

    @Test func aPOSTOnAReusedConnectionTheServerClosesAfterReadingItReachesTheServerOnce() async throws {
        let charges = Atomic<Int>(0)
        let server = try await ScriptedHTTPServer.start { index, head in
            if head.uri == "/charge" { charges.wrappingAdd(1, ordering: .relaxed) }
            return index == 0 ? .respond(ScriptedHTTPServer.ok("warm")) : .close
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        _ = try await transport.send(HTTPRequestParts(url: server.url("/warm")), timeout: .seconds(10)).body.collect(upTo: 100)
        #expect(transport.idleConnections == 1)

        await #expect {
            _ = try await transport.send(
                HTTPRequestParts(method: .POST, url: server.url("/charge"), headers: ["content-type": "application/json"], body: ByteBuffer(string: #"{"cents":100}"#)),
                timeout: .seconds(10)
            )
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        #expect(charges.load(ordering: .relaxed) == 1)
        #expect(server.connectionsAccepted == 1)
    }

    // MARK: Finding 2: a pooled connection is never left paused

    @Test(.timeLimit(.minutes(3)))
    func aConnectionWhoseReaderFellBehindAsTheBodyEndedServesTheNextRequest() async throws {
        // The head and a first part in one write, the rest (far over the 1 KiB high-water mark) with the end in a
        // later one, while nobody reads: reading pauses and the end arrives in the same read. The connection goes
        // back to the pool; before the fix its reads stayed paused and the next request waited for its timeout.
        let rest = String(repeating: "x", count: 8 << 10)
        let server = try await ScriptedHTTPServer.start { _, _ in
            .respondInParts(
                ["HTTP/1.1 200 OK\r\ncontent-length: \(5 + rest.utf8.count)\r\n\r\nfirst", rest],
                delay: .milliseconds(300)
            )
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport(configuration: .init(maximumBufferedBodyBytes: 1 << 10))
        let response = try await transport.send(HTTPRequestParts(url: server.url("/big")), timeout: .seconds(10))
        // The whole body is in and the connection is back in the pool before a byte is read.
        try await waitUntil(.seconds(60)) { transport.idleConnections == 1 }
        #expect(try await response.body.collect(upTo: 1 << 20).readableBytes == 5 + rest.utf8.count)

        // Before the fix: a timeout error, whatever the timeout.
        let again = try await transport.send(HTTPRequestParts(url: server.url("/big")), timeout: .seconds(30))
        #expect(try await again.body.collect(upTo: 1 << 20).readableBytes == 5 + rest.utf8.count)
        #expect(server.connectionsAccepted == 1)
    }

    @Test func aCloseDelimitedBodyIsNeverFollowedByAWaitersRequestOnTheSameConnection() async throws {
        // One connection allowed, bodies that end with the connection: every request still gets its own
        // connection and its answer, and none is written on a connection that is closing.
        let server = try await ScriptedHTTPServer.start { _, _ in
            .respond("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end", thenClose: true)
        }
        defer { Task { try? await server.shutdown() } }
        // A wait bound far off: a loaded machine may take seconds per connection.
        let transport = NIOHTTPClientTransport(configuration: .init(maximumConnectionsPerHost: 1, connectionWaitTimeout: .seconds(600)))
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let response = try await transport.send(HTTPRequestParts(url: server.url("/eof")), timeout: .seconds(20))
                    return String(buffer: try await response.body.collect(upTo: 100))
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(bodies == Array(repeating: "until the end", count: 6))
        #expect(server.requestsReceived == 6)
        #expect(server.connectionsAccepted == 6)
    }

    // MARK: Finding 21: header validation

    @Test func headersThatCouldSplitTheRequestAreRefusedBeforeAnythingIsSent() async throws {
        let server = try await ScriptedHTTPServer.start { _, _ in .respond(ScriptedHTTPServer.ok("should not be reached")) }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        let secret = "fake-key-header\r\nx-injected: yes"
        let bad: [(String, HTTPRequestParts)] = [
            ("CR LF in a value", HTTPRequestParts(url: server.url("/"), headers: ["authorization": "Bearer \(secret)"])),
            ("LF in a value", HTTPRequestParts(url: server.url("/"), headers: ["x-note": "a\nb"])),
            ("NUL in a value", HTTPRequestParts(url: server.url("/"), headers: ["x-note": "a\u{0}b"])),
            ("DEL in a value", HTTPRequestParts(url: server.url("/"), headers: ["x-note": "a\u{7F}b"])),
            ("a space in a name", HTTPRequestParts(url: server.url("/"), headers: ["x note": "1"])),
            ("a colon in a name", HTTPRequestParts(url: server.url("/"), headers: ["x:note": "1"])),
            ("CR LF in a name", HTTPRequestParts(url: server.url("/"), headers: ["x\r\ninjected": "1"])),
            ("an empty name", HTTPRequestParts(url: server.url("/"), headers: ["": "1"])),
            ("CR LF in the path", HTTPRequestParts(url: server.url("/v1\r\nx-injected: yes"))),
            ("a space in the path", HTTPRequestParts(url: server.url("/v1 HTTP/1.1"))),
            ("a bad method", HTTPRequestParts(method: .RAW(value: "POST /x HTTP/1.1\r\n"), url: server.url("/"))),
        ]
        for (name, request) in bad {
            await #expect("\(name)") {
                _ = try await transport.send(request, timeout: .seconds(10))
            } throws: { error in
                guard let error = error as? ProviderError else { return false }
                return error.kind == .misconfigured && !error.message.contains("fake-key-header") && !error.description.contains("injected: yes")
            }
        }
        #expect(server.connectionsAccepted == 0)

        // Tabs and non-ASCII bytes are fine, as in AsyncHTTPClient.
        let fine = try await transport.send(
            HTTPRequestParts(url: server.url("/ok"), headers: ["x-note": "a\tb", "x-name": "Zoë"]),
            timeout: .seconds(10)
        )
        #expect(fine.status == 200)
    }

    @Test func aConnectionCloseRequestClosesTheConnectionAfterTheResponse() async throws {
        let server = try await ScriptedHTTPServer.start { _, _ in .respond(ScriptedHTTPServer.ok("once")) }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        for _ in 0..<2 {
            let response = try await transport.send(HTTPRequestParts(url: server.url("/"), headers: ["Connection": "close"]), timeout: .seconds(10))
            #expect(String(buffer: try await response.body.collect(upTo: 100)) == "once")
        }
        #expect(server.connectionsAccepted == 2)
        try await waitUntil(.seconds(60)) { transport.openConnections == 0 }
    }

    // MARK: Item 5: a bounded, timed wait for a connection

    @Test(.timeLimit(.minutes(3)))
    func theQueueForAConnectionIsBounded() async throws {
        let server = try await ScriptedHTTPServer.start { _, head in
            head.uri == "/hang" ? .hang : .respond(ScriptedHTTPServer.ok("free"))
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport(
            configuration: .init(maximumConnectionsPerHost: 1, maximumWaitersPerHost: 1, connectionWaitTimeout: .seconds(600))
        )
        // The only connection is busy.
        let busy = Task { try await transport.send(HTTPRequestParts(url: server.url("/hang")), timeout: .seconds(600)) }
        try await waitUntil(.seconds(60)) { server.requestsReceived == 1 }
        // One request may wait...
        let waiting = Task { try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(600)) }
        try await waitUntil(.seconds(60)) { transport.waitingRequests == 1 }
        // ...the next fails at once with a connection error, naming the host and port.
        await #expect {
            _ = try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(600))
        } throws: { error in
            guard let error = error as? ProviderError else { return false }
            return error.kind == .connection && error.message.contains("waiting for a connection")
                && error.message.contains("127.0.0.1:\(server.port)")
        }
        #expect(transport.waitingRequests == 1)
        // A cancelled waiter leaves the queue.
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(transport.waitingRequests == 0)
        busy.cancel()
        _ = try? await busy.value
        // The connection the cancelled request held closes; the next request gets a new one.
        let after = try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(60))
        #expect(String(buffer: try await after.body.collect(upTo: 100)) == "free")
        #expect(server.requestsReceived == 2)
    }

    @Test(.timeLimit(.minutes(3)))
    func theWaitForAConnectionIsBoundedInTime() async throws {
        let server = try await ScriptedHTTPServer.start { _, _ in .hang }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport(
            configuration: .init(maximumConnectionsPerHost: 1, maximumWaitersPerHost: 8, connectionWaitTimeout: .seconds(1))
        )
        let busy = Task { try await transport.send(HTTPRequestParts(url: server.url("/hang")), timeout: .seconds(600)) }
        defer { busy.cancel() }
        try await waitUntil(.seconds(60)) { server.requestsReceived == 1 }
        // The waiter fails with a timeout once the wait bound passes, not at its own (far) timeout.
        await #expect {
            _ = try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(600))
        } throws: { error in
            guard let error = error as? ProviderError else { return false }
            return error.kind == .timeout && error.message.contains("no connection free") && error.message.contains("127.0.0.1:\(server.port)")
        }
        #expect(transport.waitingRequests == 0)
        #expect(server.requestsReceived == 1)
    }

    @Test(.timeLimit(.minutes(3)))
    func theChainFailsOverWhenNoConnectionIsFreeInTime() async throws {
        try await withServer { backup in
            backup.script("backup", .text("from backup"))
            let saturated = try await ScriptedHTTPServer.start { _, _ in .hang }
            defer { Task { try? await saturated.shutdown() } }
            let transport = NIOHTTPClientTransport(
                configuration: .init(maximumConnectionsPerHost: 1, maximumWaitersPerHost: 4, connectionWaitTimeout: .milliseconds(300))
            )
            let busy = Task { try await transport.send(HTTPRequestParts(url: saturated.url("/v1/chat/completions")), timeout: .seconds(60)) }
            defer { busy.cancel() }
            try await waitUntil(.seconds(60)) { saturated.requestsReceived == 1 }
            var primary = Provider("openai", model: "m", apiKey: "fake-key-saturated", baseURL: "http://127.0.0.1:\(saturated.port)/v1", maxRetries: 0)
            primary.name = "saturated"
            let chain = FallbackChain([primary, backup.openAI("backup", key: "fake-key-backup")], configuration: config(), transport: transport)
            let answer = try await chain.chat("hi")
            #expect(answer.content == "from backup")
            #expect(chain.healthReport()[0].failuresByClass[ProviderError.Kind.timeout.label] == 1)
        }
    }

    // MARK: Response bounds

    @Test(arguments: [
        ("an absurd content-length", "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n"),
        ("a negative content-length", "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"),
        ("two content-lengths", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab"),
        ("a status that is not a number", "HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n"),
        ("a status line that is not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        ("a header without a colon", "HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 0\r\n\r\n"),
        ("an over-long header", "HTTP/1.1 200 OK\r\nx-big: \(String(repeating: "a", count: 100 << 10))\r\ncontent-length: 0\r\n\r\n"),
        ("too many headers", "HTTP/1.1 200 OK\r\n" + String(repeating: "x-a: b\r\n", count: 2_000) + "content-length: 0\r\n\r\n"),
        ("a bad chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ])
    func aMalformedResponseIsAnInvalidResponseError(_ name: String, _ reply: String) async throws {
        let server = try await ScriptedHTTPServer.start { _, _ in .respond(reply) }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        await #expect("\(name)") {
            let response = try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
        } throws: { error in
            guard let error = error as? ProviderError else { return false }
            return error.kind == .invalidResponse && error.message.contains("127.0.0.1:\(server.port)")
        }
        try await waitUntil(.seconds(60)) { transport.openConnections == 0 }
    }

    @Test(.timeLimit(.minutes(3)))
    func aHugeDeclaredBodyIsBoundedByTheReadersLimit() async throws {
        // A terabyte declared, 2 MiB sent, then nothing: the reader's limit ends it, nothing is allocated ahead.
        let chunk = String(repeating: "y", count: 64 << 10)
        let server = try await ScriptedHTTPServer.start { _, _ in
            .respondInParts(["HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n"] + Array(repeating: chunk, count: 32), delay: .milliseconds(5))
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        let response = try await transport.send(HTTPRequestParts(url: server.url("/")), timeout: .seconds(10))
        await #expect {
            _ = try await response.body.collect(upTo: 1 << 20)
        } throws: { error in
            (error as? ProviderError)?.kind == .invalidResponse
        }
    }
}
