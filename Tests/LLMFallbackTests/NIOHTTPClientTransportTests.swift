import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing

@testable import LLMFallback

/// ``NIOHTTPClientTransport`` against real servers over loopback: MockLLMServer for the chat formats and faults,
/// a scriptable raw HTTP server for connection handling and TLS.
@Suite struct NIOHTTPClientTransportTests {
    static let key = "fake-key-transport"

    func makeChain(_ providers: [Provider], _ transport: NIOHTTPClientTransport) -> FallbackChain {
        FallbackChain(providers, configuration: config(), transport: transport)
    }

    /// A streaming OpenAI request for `model` on `server`, sent straight to the transport.
    func openAIRequest(_ server: MockLLMServer, model: String, stream: Bool = false) -> HTTPRequestParts {
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}],"stream":\#(stream)}"#
        return HTTPRequestParts(
            method: .POST,
            url: server.openAIBaseURL + "/chat/completions",
            headers: ["content-type": "application/json", "authorization": "Bearer \(Self.key)"],
            body: ByteBuffer(string: body)
        )
    }

    // MARK: Through a chain, every format

    @Test(arguments: [Format.openAI, .anthropic, .gemini, .azure])
    func chatAndStreamThroughAChain(_ format: Format) async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("m", .text("Hello there friend", usage: (prompt: 11, completion: 3)))
            let chain = makeChain([format.provider(server, model: "m", key: Self.key)], transport)
            let response = try await chain.chat("Hi")
            #expect(response.content == "Hello there friend")
            #expect(response.usage?.completionTokens == 3)

            server.script("s", .chunkDelay(.milliseconds(5), .text("one two three four five", usage: (prompt: 4, completion: 5))))
            let streaming = makeChain([format.provider(server, model: "s", key: Self.key)], transport)
            var chunks: [ChatChunk] = []
            for try await chunk in streaming.stream("count") { chunks.append(chunk) }
            #expect(chunks.map(\.content).joined() == "one two three four five")
            #expect(chunks.filter(\.hasContent).count >= 5)
            #expect(chunks.compactMap(\.finishReason).last == .stop)
            // Both requests went over one kept-alive connection.
            #expect(server.connectionsAccepted == 1)
            let sent = try #require(server.requests(for: "m").first)
            #expect(sent.header(format.keyHeader.0)?.contains(Self.key) == true)
        }
    }

    @Test func toolCallsAndErrorStatusesThroughAChain() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("tool", .toolCall(name: "lookup", arguments: #"{"query":"swift"}"#))
            let response = try await makeChain([Format.openAI.provider(server, model: "tool", key: Self.key)], transport)
                .chat(messages: [.user("find")], tools: [Tool(name: "lookup")])
            #expect(response.toolCalls.first?.parsedArguments == ["query": "swift"])

            server.script("limited", .status(429, headers: ["retry-after": "7"]))
            do {
                _ = try await makeChain([Format.anthropic.provider(server, model: "limited", key: Self.key)], transport).chat("hi")
                Issue.record("a 429 must fail")
            } catch let error as AllProvidersFailed {
                #expect(error.failures.first?.kind == .rateLimited)
                #expect(error.failures.first?.retryAfter == .seconds(7))
            }
        }
    }

    // MARK: Pooling

    @Test func sequentialRequestsReuseOneConnection() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("m", .text("again"))
            let chain = makeChain([server.openAI("m", key: Self.key)], transport)
            for _ in 0..<20 {
                let answer = try await chain.chat("hi")
                #expect(answer.content == "again")
            }
            #expect(server.connectionsAccepted == 1)
            #expect(server.requests.count == 20)
            #expect(transport.idleConnections == 1)
        }
    }

    @Test func manyConcurrentRequestsAreAllAnswered() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("m", .delayed(.milliseconds(20), .text("together")))
            let chain = makeChain([server.openAI("m", key: Self.key)], transport)
            let answers = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<200 { group.addTask { try await chain.chat("hi").content } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(answers.count == 200)
            #expect(answers.allSatisfy { $0 == "together" })
            #expect(server.connectionsAccepted <= 200)
            #expect(transport.openConnections == server.connectionsAccepted)
        }
    }

    @Test func theConnectionLimitQueuesRequests() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport(
                // A wait bound far off: a loaded machine may take seconds per request.
                configuration: .init(maximumConnectionsPerHost: 2, connectionWaitTimeout: .seconds(600))
            )
            server.script("m", .delayed(.milliseconds(10), .text("queued")))
            let chain = makeChain([server.openAI("m", key: Self.key)], transport)
            let answers = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await chain.chat("hi").content } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(answers == Array(repeating: "queued", count: 20))
            #expect(server.connectionsAccepted <= 2)
        }
    }

    @Test func idleConnectionsCloseAfterTheIdleTimeout() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport(configuration: .init(idleTimeout: .seconds(1)))
            server.script("m", .text("brief"))
            let start = ContinuousClock.now
            _ = try await makeChain([server.openAI("m", key: Self.key)], transport).chat("hi")
            if ContinuousClock.now - start < .milliseconds(900) {
                // Idle for less than the timeout (a loaded machine may take longer to get here).
                #expect(transport.openConnections == 1)
            }
            try await waitUntil(.seconds(10)) { transport.openConnections == 0 }
            #expect(transport.idleConnections == 0)
        }
    }

    @Test func smallResponsesAreHandedOverWholeAndStreamsPartByPart() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            // Written in one write, so it arrives in one read.
            let oneWrite = try await ScriptedHTTPServer.start { _, _ in .respond(ScriptedHTTPServer.ok("short")) }
            defer { Task { try? await oneWrite.shutdown() } }
            let small = try await transport.send(HTTPRequestParts(url: oneWrite.url("/")), timeout: .seconds(10))
            guard case .buffer = small.body.storage else {
                Issue.record("a response that arrives in one read should be handed over whole")
                return
            }
            #expect(small.status == 200)
            #expect(String(buffer: try await small.body.collect(upTo: 1 << 20)) == "short")

            // Far apart, so that even a loaded machine reads the first part before the next is written.
            server.script("slow", .chunkDelay(.milliseconds(300), .text("a b")))
            let slow = try await transport.send(openAIRequest(server, model: "slow", stream: true), timeout: .seconds(10))
            guard case .streaming = slow.body.storage else {
                Issue.record("a response spread over many reads should stream")
                return
            }
            var parts = 0
            var text = ""
            for try await part in slow.body {
                parts += 1
                text += String(buffer: part)
            }
            #expect(parts >= 2)
            #expect(text.contains("[DONE]"))
            #expect(server.connectionsAccepted == 1)
        }
    }

    // MARK: Failures

    @Test func aRefusedConnectionFailsFastWithAConnectionError() async throws {
        let port = try await unusedPort()
        let transport = NIOHTTPClientTransport(configuration: .init(connectTimeout: .seconds(60)))
        let start = ContinuousClock.now
        await #expect {
            _ = try await transport.send(HTTPRequestParts(url: "http://127.0.0.1:\(port)/v1/chat/completions"), timeout: .seconds(60))
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        // At once, not at the 60 s connect timeout (generous: the whole suite loads the machine).
        #expect(ContinuousClock.now - start < .seconds(45))
        #expect(transport.openConnections == 0)

        try await withServer { server in
            server.script("backup", .text("from backup"))
            var down = Provider("openai", model: "down", apiKey: Self.key, baseURL: "http://127.0.0.1:\(port)/v1", maxRetries: 0)
            down.name = "down"
            let chain = makeChain([down, server.openAI("backup", key: Self.key)], transport)
            let answer = try await chain.chat("hi")
            #expect(answer.content == "from backup")
            #expect(chain.healthReport()[0].failuresByClass[ProviderError.Kind.connection.label] == 1)
        }
    }

    @Test func aResetIsAConnectionErrorAndFailsOver() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("reset", .reset)
            await #expect {
                _ = try await transport.send(openAIRequest(server, model: "reset"), timeout: .seconds(10))
            } throws: { error in
                (error as? ProviderError)?.kind == .connection
            }
            server.script("backup", .text("from backup"))
            let chain = makeChain([server.openAI("reset", key: Self.key), server.openAI("backup", key: Self.key)], transport)
            let answer = try await chain.chat("hi")
            #expect(answer.content == "from backup")
            #expect(chain.healthReport()[0].failuresByClass[ProviderError.Kind.connection.label] == 1)
        }
    }

    @Test func aCutStreamIsAConnectionErrorAndFailsOver() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("cut", .cutStream(afterChunks: 2))
            await #expect {
                let response = try await transport.send(openAIRequest(server, model: "cut", stream: true), timeout: .seconds(10))
                for try await _ in response.body {}
            } throws: { error in
                (error as? ProviderError)?.kind == .connection
            }
            server.script("cut0", .cutStream(afterChunks: 0))
            server.script("backup", .text("clean answer"))
            let chain = makeChain([server.openAI("cut0", key: Self.key), server.openAI("backup", key: Self.key)], transport)
            let response = try await chain.stream("hi").collect()
            #expect(response.content == "clean answer")
            #expect(chain.healthReport()[0].failures == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aHangIsCutByCancellationAndTheServerSeesItAbandoned() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("hang", .hang)
            let task = Task { try await transport.send(openAIRequest(server, model: "hang"), timeout: .seconds(60)) }
            try await server.waitForRequests(1, model: "hang")
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            try await server.waitForAbandonedRequests(1)
            try await waitUntil { transport.openConnections == 0 }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theTimeoutBoundsTheWaitForTheHead() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("hang", .hang)
            let start = ContinuousClock.now
            await #expect {
                // Long enough for the request to arrive on a loaded machine: the server must see it abandoned.
                _ = try await transport.send(openAIRequest(server, model: "hang"), timeout: .seconds(2))
            } throws: { error in
                (error as? ProviderError)?.kind == .timeout
            }
            // Far less than forever (generous: the whole suite loads the machine).
            #expect(ContinuousClock.now - start < .seconds(45))
            let arrived = server.requests(for: "hang").count
            #expect(arrived == 1)
            if arrived == 1 { try await server.waitForAbandonedRequests(1) }
        }
    }

    /// `send(_:timeout:boundingBody:)`, the chain's path for a non-streamed attempt: the timeout goes on past the
    /// head to the body. A body that stops halfway fails for its reader as a timeout, the connection closes and the
    /// server sees the request abandoned; without the bound the read would wait for ever (the time limit fails it).
    @Test(.timeLimit(.minutes(1)))
    func theBodyBoundFailsABodyThatStopsHalfway() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("stalls", .stallAfter(chunks: 1, text: "one two three four"))
            let response = try await transport.send(openAIRequest(server, model: "stalls"), timeout: .seconds(1), boundingBody: true)
            #expect(response.status == 200)
            await #expect {
                _ = try await response.body.collect(upTo: 1 << 20)
            } throws: { error in
                let error = error as? ProviderError
                return error?.kind == .timeout && error?.message.contains("no complete response within") == true
            }
            try await server.waitForAbandonedRequests(1)
            try await waitUntil { transport.openConnections == 0 }
        }
    }

    /// A body that arrives whole within the bound is read whole, its connection goes back to the pool, and the
    /// bound is gone with it: the connection serves the next request after the first one's timeout has passed.
    @Test(.timeLimit(.minutes(1)))
    func aBodyThatArrivesInTimeIsReadWholeAndItsConnectionReused() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            let text = Array(repeating: "word", count: 40).joined(separator: " ")
            server.script("parts", [.chunkDelay(.milliseconds(5), .text(text)), .text("again")])
            let response = try await transport.send(openAIRequest(server, model: "parts"), timeout: .milliseconds(500), boundingBody: true)
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            #expect(body.contains("word"))
            try await waitUntil { transport.idleConnections == 1 }
            // Past the first request's deadline: a timer left armed would have nothing to end but must not
            // touch the connection, which the second request now uses.
            try await Task.sleep(for: .milliseconds(600))
            let again = try await transport.send(openAIRequest(server, model: "parts"), timeout: .seconds(10), boundingBody: true)
            #expect(String(buffer: try await again.body.collect(upTo: 1 << 20)).contains("again"))
            #expect(transport.openConnections == 1)
        }
    }

    /// Cancelling the task that reads a bounded body ends the read at once with `CancellationError` (not a
    /// timeout) and closes the connection.
    @Test(.timeLimit(.minutes(1)))
    func cancellingTheReadOfABoundedBodyIsACancellation() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("stalls", .stallAfter(chunks: 1, text: "one two three four"))
            let firstPart = Recorder<Int>()
            let task = Task {
                let response = try await transport.send(openAIRequest(server, model: "stalls"), timeout: .seconds(300), boundingBody: true)
                for try await part in response.body { firstPart.append(part.readableBytes) }
            }
            try await firstPart.wait(for: 1)
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            try await server.waitForAbandonedRequests(1)
            try await waitUntil { transport.openConnections == 0 }
        }
    }

    @Test func anAlreadyCancelledTaskSendsNothing() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await transport.send(openAIRequest(server, model: "m"), timeout: .seconds(10))
            }
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(server.requests.isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingMidStreamClosesTheUpstreamConnection() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("long", .chunkDelay(.milliseconds(50), .text(Array(repeating: "word", count: 200).joined(separator: " "))))
            let firstPart = Recorder<Int>()
            let task = Task {
                let response = try await transport.send(openAIRequest(server, model: "long", stream: true), timeout: .seconds(10))
                for try await part in response.body { firstPart.append(part.readableBytes) }
            }
            try await firstPart.wait(for: 1)
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            try await server.waitForAbandonedRequests(1)
            try await waitUntil { transport.openConnections == 0 }
        }
    }

    // MARK: Connection handling (scripted raw server)

    @Test func aServerClosingAConnectionAsItIsReusedFailsTheRequestWithoutResendingIt() async throws {
        // The server answers the first request on a connection and closes the connection when a second one
        // arrives (an idle close racing the reuse, or a server that crashed on the request): the request was
        // written, so it fails with a connection error and is not sent again (finding 5; the chain's policy decides
        // whether to retry). Before the fix it was re-sent on a new connection: the server saw it twice.
        let server = try await ScriptedHTTPServer.start { index, _ in
            index == 0 ? .respond(ScriptedHTTPServer.ok("fine")) : .close
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        let first = try await transport.send(HTTPRequestParts(url: server.url("/x")), timeout: .seconds(10))
        #expect(String(buffer: try await first.body.collect(upTo: 1024)) == "fine")
        await #expect {
            _ = try await transport.send(
                HTTPRequestParts(method: .POST, url: server.url("/charge"), body: ByteBuffer(string: #"{"amount":1}"#)),
                timeout: .seconds(10)
            )
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        #expect(server.requestsReceived == 2)
        #expect(server.connectionsAccepted == 1)

        // A fresh connection that fails is not retried either.
        let closing = try await ScriptedHTTPServer.start { _, _ in .close }
        defer { Task { try? await closing.shutdown() } }
        await #expect {
            _ = try await transport.send(HTTPRequestParts(url: closing.url("/x")), timeout: .seconds(10))
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        #expect(closing.requestsReceived == 1)
    }

    @Test func aConnectionTheServerClosedAfterAnsweringIsNotReused() async throws {
        // A server that closes right after answering, without saying so: once the close is seen, the connection
        // is out of the pool and the next request opens a new one.
        let closing = try await ScriptedHTTPServer.start { _, _ in .respond(ScriptedHTTPServer.ok("bye"), thenClose: true) }
        defer { Task { try? await closing.shutdown() } }
        let transport = NIOHTTPClientTransport()
        for _ in 0..<10 {
            let response = try await transport.send(HTTPRequestParts(url: closing.url("/x")), timeout: .seconds(10))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "bye")
            try await waitUntil(.seconds(10)) { transport.openConnections == 0 }
        }
        #expect(closing.connectionsAccepted == 10)
        #expect(closing.requestsReceived == 10)
    }

    @Test func connectionCloseResponsesAndChunkedBodies() async throws {
        let server = try await ScriptedHTTPServer.start { index, head in
            switch head.uri {
            case "/close":
                return .respond("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nclose")
            case "/eof":
                return .respond("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end", thenClose: true)
            default:
                return .respondInParts(
                    ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"],
                    delay: .milliseconds(10)
                )
            }
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        for path in ["/close", "/close"] {
            let response = try await transport.send(HTTPRequestParts(url: server.url(path)), timeout: .seconds(10))
            #expect(String(buffer: try await response.body.collect(upTo: 100)) == "close")
        }
        #expect(server.connectionsAccepted == 2)
        let eof = try await transport.send(HTTPRequestParts(url: server.url("/eof")), timeout: .seconds(10))
        #expect(String(buffer: try await eof.body.collect(upTo: 100)) == "until the end")
        for _ in 0..<3 {
            let chunked = try await transport.send(HTTPRequestParts(url: server.url("/chunked?x=1")), timeout: .seconds(10))
            #expect(String(buffer: try await chunked.body.collect(upTo: 100)) == "hello world")
        }
        #expect(server.connectionsAccepted == 4)
        try await waitUntil { transport.openConnections == 1 }
    }

    @Test func aBodyLeftUnreadIsDrainedAndTheConnectionReused() async throws {
        let server = try await ScriptedHTTPServer.start { _, _ in
            .respondInParts(["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n", "4\r\nrest\r\n0\r\n\r\n"], delay: .milliseconds(300))
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport()
        do {
            let response = try await transport.send(HTTPRequestParts(url: server.url("/x")), timeout: .seconds(10))
            var iterator = response.body.makeAsyncIterator()
            #expect(try await iterator.next().map { String(buffer: $0) } == "first")
            // The response and the iterator go away here, before the end.
        }
        try await waitUntil { transport.idleConnections == 1 }
        let again = try await transport.send(HTTPRequestParts(url: server.url("/x")), timeout: .seconds(10))
        #expect(String(buffer: try await again.body.collect(upTo: 100)) == "firstrest")
        #expect(server.connectionsAccepted == 1)
    }

    @Test func aLargeBodyReadSlowlyArrivesWhole() async throws {
        let size = 4 << 20
        let server = try await ScriptedHTTPServer.start { _, _ in
            .respond("HTTP/1.1 200 OK\r\ncontent-length: \(size)\r\n\r\n" + String(repeating: "x", count: size))
        }
        defer { Task { try? await server.shutdown() } }
        let transport = NIOHTTPClientTransport(configuration: .init(maximumBufferedBodyBytes: 64 << 10))
        let response = try await transport.send(HTTPRequestParts(url: server.url("/big")), timeout: .seconds(10))
        var total = 0
        var parts = 0
        for try await part in response.body {
            total += part.readableBytes
            parts += 1
            if parts % 16 == 0 { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(total == size)
    }

    @Test func requestHeadAndBodyAreSentAsGiven() async throws {
        try await withServer { server in
            let transport = NIOHTTPClientTransport()
            server.script("m", .text("ok"))
            let response = try await transport.send(openAIRequest(server, model: "m"), timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            let sent = try #require(server.requests.first)
            #expect(sent.method == "POST")
            #expect(sent.path == "/v1/chat/completions")
            #expect(sent.header("host") == "127.0.0.1:\(server.port)")
            #expect(sent.header("content-length") == String(sent.body.count))
            #expect(sent.header("authorization") == "Bearer \(Self.key)")
            #expect(sent.bodyText.contains(#""model":"m""#))
        }
    }

    @Test func urlsAreParsedWithoutFoundation() throws {
        let plain = try RequestTarget(parsing: "http://Example.com/v1/chat?x=1#frag")
        #expect(plain.key == ConnectionKey(isTLS: false, host: "example.com", port: 80))
        #expect(plain.hostHeader == "example.com")
        #expect(plain.pathAndQuery == "/v1/chat?x=1")
        let tls = try RequestTarget(parsing: "HTTPS://api.example.com:8443")
        #expect(tls.key == ConnectionKey(isTLS: true, host: "api.example.com", port: 8443))
        #expect(tls.hostHeader == "api.example.com:8443")
        #expect(tls.pathAndQuery == "/")
        let v6 = try RequestTarget(parsing: "http://[::1]:8080?q")
        #expect(v6.key.host == "::1")
        #expect(v6.hostHeader == "[::1]:8080")
        #expect(v6.pathAndQuery == "/?q")
        for bad in ["ftp://x/", "http://", "http://host:99999/", "http://user:fake-key-1@host/", "http://[::1/", "http://host:8a/"] {
            #expect(throws: ProviderError.self, "\(bad)") { try RequestTarget(parsing: bad) }
        }
        #expect("127.0.0.1".isIPAddress && "::1".isIPAddress && !"localhost".isIPAddress && !"1.2.3".isIPAddress)
    }

    // MARK: TLS

    @Test(
        .enabled(if: SelfSignedCertificate.canMake, "skipped: needs the openssl command to make a self-signed certificate"),
        .timeLimit(.minutes(1))
    )
    func httpsWithATrustedSelfSignedCertificate() async throws {
        let made = try await SelfSignedCertificate.make()
        let certificate = try #require(made)
        let serverContext = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: [.certificate(certificate.certificate)],
            privateKey: .privateKey(certificate.key)
        ))
        let completion = #"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"over tls"},"finish_reason":"stop"}]}"#
        let server = try await ScriptedHTTPServer.start(tls: serverContext) { _, _ in .respond(ScriptedHTTPServer.ok(completion)) }
        defer { Task { try? await server.shutdown() } }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([certificate.certificate])
        let transport = NIOHTTPClientTransport(configuration: .init(tlsConfiguration: tls))
        var provider = Provider("openai", model: "m", apiKey: Self.key, baseURL: "https://localhost:\(server.port)/v1")
        provider.name = "tls"
        let chain = makeChain([provider], transport)
        for _ in 0..<3 {
            let answer = try await chain.chat("hi")
            #expect(answer.content == "over tls")
        }
        #expect(server.connectionsAccepted == 1)

        // The default configuration trusts the system's roots only: the self-signed certificate is refused.
        let strict = NIOHTTPClientTransport()
        await #expect {
            _ = try await strict.send(HTTPRequestParts(url: "https://localhost:\(server.port)/v1/chat/completions"), timeout: .seconds(10))
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        // And a trusted certificate for another name is refused too.
        let madeForAnotherName = try await SelfSignedCertificate.make(name: "elsewhere.invalid", withLoopbackAddress: false)
        let wrongName = try #require(madeForAnotherName)
        var other = TLSConfiguration.makeClientConfiguration()
        other.trustRoots = .certificates([wrongName.certificate])
        let otherServer = try await ScriptedHTTPServer.start(
            tls: try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: [.certificate(wrongName.certificate)],
                privateKey: .privateKey(wrongName.key)
            ))
        ) { _, _ in .respond(ScriptedHTTPServer.ok("no")) }
        defer { Task { try? await otherServer.shutdown() } }
        await #expect {
            _ = try await NIOHTTPClientTransport(configuration: .init(tlsConfiguration: other))
                .send(HTTPRequestParts(url: "https://localhost:\(otherServer.port)/"), timeout: .seconds(10))
        } throws: { error in
            (error as? ProviderError)?.kind == .connection
        }
        #expect(otherServer.requestsReceived == 0)
    }
}

// MARK: - Helpers

/// Polls `condition` until it holds, or fails after `limit`.
func waitUntil(_ limit: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("condition not met within \(limit)")
            return
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// A port nothing listens on.
func unusedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// A certificate and key made with the `openssl` command, for `name` (and 127.0.0.1 when `withLoopbackAddress`).
struct SelfSignedCertificate {
    var certificate: NIOSSLCertificate
    var key: NIOSSLPrivateKey

    /// Whether the `openssl` command is on the `PATH`.
    static let canMake: Bool = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/openssl") }
    }()

    /// `nil` when there is no `openssl` command.
    static func make(name: String = "localhost", withLoopbackAddress: Bool = true) async throws -> SelfSignedCertificate? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llm-fallback-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyPath = directory.appendingPathComponent("key.pem").path
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", keyPath, "-out", certificatePath,
            "-subj", "/CN=\(name)", "-addext", "subjectAltName=DNS:\(name)" + (withLoopbackAddress ? ",IP:127.0.0.1" : ""),
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return nil
        }
        // Waited for on a Dispatch thread: blocking one of the few cooperative threads stalls every other test.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
        guard process.terminationStatus == 0 else {
            if process.terminationStatus == 127 { return nil }  // env: openssl not found
            throw MockLLMServerError(message: "openssl failed with status \(process.terminationStatus)")
        }
        return SelfSignedCertificate(
            certificate: try #require(try NIOSSLCertificate.fromPEMFile(certificatePath).first),
            key: try NIOSSLPrivateKey(file: keyPath, format: .pem)
        )
    }
}

/// An HTTP/1.1 server whose replies are raw bytes chosen per request, for connection handling tests.
final class ScriptedHTTPServer: Sendable {
    enum Reply: Sendable {
        /// Writes these bytes; closes the connection afterwards when `thenClose`.
        case respond(String, thenClose: Bool = false)
        /// Writes the parts `delay` apart.
        case respondInParts([String], delay: Duration)
        /// Closes the connection without answering.
        case close
        /// Never answers.
        case hang
    }

    /// Chooses the reply to the `index`th request (from 0) on a connection.
    typealias Script = @Sendable (_ index: Int, _ head: HTTPRequestHead) -> Reply

    private let channel: any Channel
    private let counters: Counters
    let port: Int

    final class Counters: Sendable {
        let accepted = Atomic<Int>(0)
        let requests = Atomic<Int>(0)
        let onlyFirstConnectionAnswers = Atomic<Bool>(false)
    }

    var connectionsAccepted: Int { counters.accepted.load(ordering: .relaxed) }
    var requestsReceived: Int { counters.requests.load(ordering: .relaxed) }
    /// Connections after the first close at once when a request arrives.
    var onlyFirstConnectionAnswers: Bool {
        get { counters.onlyFirstConnectionAnswers.load(ordering: .relaxed) }
        set { counters.onlyFirstConnectionAnswers.store(newValue, ordering: .relaxed) }
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    static func ok(_ body: String) -> String {
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    private init(channel: any Channel, counters: Counters) {
        self.channel = channel
        self.counters = counters
        self.port = channel.localAddress!.port!
    }

    static func start(tls: NIOSSLContext? = nil, script: @escaping Script) async throws -> ScriptedHTTPServer {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let connection = counters.accepted.wrappingAdd(1, ordering: .relaxed).oldValue
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try channel.pipeline.syncOperations.addHandler(Handler(script: script, counters: counters, connection: connection))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedHTTPServer(channel: channel, counters: counters)
    }

    func shutdown() async throws {
        try await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = ByteBuffer
        let script: Script
        let counters: Counters
        let connection: Int
        var index = 0
        var head: HTTPRequestHead?

        init(script: @escaping Script, counters: Counters, connection: Int) {
            self.script = script
            self.counters = counters
            self.connection = connection
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                counters.requests.wrappingAdd(1, ordering: .relaxed)
                let reply = counters.onlyFirstConnectionAnswers.load(ordering: .relaxed) && connection > 0 ? .close : script(index, head!)
                index += 1
                switch reply {
                case .respond(let text, let thenClose):
                    let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)))
                    if thenClose {
                        let channel = context.channel
                        written.whenComplete { _ in channel.close(promise: nil) }
                    }
                case .respondInParts(let parts, let delay):
                    let channel = context.channel
                    for (offset, part) in parts.enumerated() {
                        channel.eventLoop.scheduleTask(in: .nanoseconds(delay.clampedNanoseconds * Int64(offset))) {
                            channel.writeAndFlush(ByteBuffer(string: part), promise: nil)
                        }
                    }
                case .close:
                    context.close(promise: nil)
                case .hang:
                    break
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
