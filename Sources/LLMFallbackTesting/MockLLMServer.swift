import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 server on the loopback interface that speaks the OpenAI, Azure OpenAI, Anthropic and Gemini wire
/// formats and misbehaves on demand, for testing LLM clients over real sockets.
///
/// Start one per test on a free port, point the client at ``openAIBaseURL`` (OpenAI) or ``baseURL`` (Anthropic,
/// Gemini, Azure), script per model what the server should do, and inspect what it received.
///
/// ```swift
/// let server = try await MockLLMServer.start()
/// server.script("gpt-4o", [.status(429, headers: ["retry-after": "1"]), .text("Hello")])
/// // ... run the client against server.openAIBaseURL ...
/// #expect(server.requests(for: "gpt-4o").count == 2)
/// try await server.shutdown()
/// ```
///
/// or, with the server shut down for you:
///
/// ```swift
/// try await withMockLLMServer { server in
///     server.script("claude-sonnet-4", .hang)
///     // ... a client that times out ...
///     await server.waitForAbandonedRequests(1)
/// }
/// ```
///
/// ### Routes
///
/// | format | route |
/// | --- | --- |
/// | OpenAI | `POST /v1/chat/completions` |
/// | Azure OpenAI | `POST /openai/deployments/{deployment}/chat/completions?api-version=...` |
/// | Anthropic | `POST /v1/messages` |
/// | Gemini | `POST /v1beta/models/{model}:generateContent`, `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` |
///
/// Anything else is recorded with the format ``MockWireFormat/unknown`` and answered `404` with an OpenAI-format
/// error body. Each request is answered in its route's format, and streamed when it asked for a stream
/// (`"stream": true`, or Gemini's `:streamGenerateContent`; Gemini streams are always Server-Sent Events).
///
/// ### Scripts
///
/// Each request takes the next ``MockBehavior`` queued for its model (``RecordedRequest/model``); the last one
/// repeats forever. A model with no script is answered `"Hello from <model>"`.
///
/// Connections are kept alive between requests unless the client asks otherwise. All methods may be called from
/// any thread or task.
public final class MockLLMServer: Sendable {
    private let state: ServerState
    private let channel: any Channel
    private let host: String

    /// The TCP port the server listens on.
    public let port: Int

    private init(state: ServerState, channel: any Channel, host: String, port: Int) {
        self.state = state
        self.channel = channel
        self.host = host
        self.port = port
    }

    /// Starts a server listening on `host` and `port`.
    ///
    /// The server runs on NIO's shared event loop group (`MultiThreadedEventLoopGroup.singleton`). Call
    /// ``shutdown()`` when done, or use ``withMockLLMServer(host:port:isolation:_:)``.
    ///
    /// - Parameters:
    ///   - host: The address to listen on.
    ///   - port: The port to listen on; `0`, the default, picks a free one (see ``port``).
    /// - Returns: The running server.
    /// - Throws: When the address cannot be bound.
    public static func start(host: String = "127.0.0.1", port: Int = 0) async throws -> MockLLMServer {
        let state = ServerState()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Thousands of clients may connect at once (load tests, concurrency tests): NIO's default backlog of
            // 256 would drop their SYNs and turn a burst into connect delays and failures.
            .serverChannelOption(.backlog, value: 4096)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard let connection = state.connectionAccepted(channel) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        MockHTTPHandler(state: state, connection: connection)
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        guard let boundPort = channel.localAddress?.port else {
            try? await channel.close()
            throw MockLLMServerError(message: "The server socket has no port.")
        }
        return MockLLMServer(state: state, channel: channel, host: host, port: boundPort)
    }

    /// Stops listening, closes every open connection, and releases every task suspended in
    /// ``waitForRequests(_:model:)`` or ``waitForAbandonedRequests(_:)``.
    ///
    /// Connections closed this way do not count as abandoned requests. Calling it again does nothing.
    ///
    /// - Throws: When the listening socket fails to close.
    public func shutdown() async throws {
        guard let connections = self.state.shutDown() else { return }
        for connection in connections {
            try? await connection.close()
        }
        try await self.channel.close()
    }

    /// The server's root URL, `http://127.0.0.1:PORT`: the base URL for Anthropic, Gemini and Azure OpenAI clients.
    public var baseURL: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "http://\(host):\(self.port)"
    }

    /// ``baseURL`` followed by `/v1`: the base URL for OpenAI clients.
    public var openAIBaseURL: String {
        self.baseURL + "/v1"
    }

    // MARK: Scripting

    /// Queues behaviours for `model`: each request for that model takes the next one, and the last one repeats
    /// forever.
    ///
    /// Replaces any script the model had. An empty list removes the script, so the model gets the default answer
    /// again.
    ///
    /// ```swift
    /// server.script("gpt-4o", [.status(503), .status(503), .text("third time lucky")])
    /// ```
    ///
    /// - Parameters:
    ///   - model: The model, as the request names it (for Azure, the deployment).
    ///   - behaviours: What to do with the model's next requests, in order.
    public func script(_ model: String, _ behaviours: [MockBehavior]) {
        self.state.script(model, behaviours)
    }

    /// Makes every request for `model` behave as `behaviour`.
    ///
    /// - Parameters:
    ///   - model: The model, as the request names it (for Azure, the deployment).
    ///   - behaviour: What to do with each of the model's requests.
    public func script(_ model: String, _ behaviour: MockBehavior) {
        self.state.script(model, [behaviour])
    }

    /// Clears every script, recorded request and counter, so that every model gets the default answer
    /// (`"Hello from <model>"`) again.
    ///
    /// Open connections stay open; a request received before the reset is not counted as abandoned afterwards.
    public func reset() {
        self.state.reset()
    }

    // MARK: Inspection

    /// Every request received since the start or the last ``reset()``, in order of arrival.
    ///
    /// A request is recorded once it has been read completely, before it is answered.
    public var requests: [RecordedRequest] {
        self.state.requests
    }

    /// The recorded requests whose ``RecordedRequest/model`` is `model`, in order of arrival.
    ///
    /// - Parameter model: The model, as the request names it (for Azure, the deployment).
    /// - Returns: The matching requests.
    public func requests(for model: String) -> [RecordedRequest] {
        self.requests.filter { $0.model == model }
    }

    /// The number of TCP connections accepted since the start or the last ``reset()``.
    ///
    /// A client that reuses connections (keep-alive) sends several requests over one connection.
    public var connectionsAccepted: Int {
        self.state.connectionsAccepted
    }

    /// The number of requests whose client closed the connection before the response was complete, such as a
    /// cancelled or timed-out request to a model scripted with ``MockBehavior/hang``.
    ///
    /// Connections the server closes itself (``MockBehavior/cutStream(afterChunks:text:)``,
    /// ``MockBehavior/reset``, ``shutdown()``) do not count.
    public var abandonedRequests: Int {
        self.state.abandonedRequests
    }

    /// Suspends until at least `count` requests (for `model`, if given) have been recorded.
    ///
    /// Returns at once when they already have. There is no polling: the task is resumed by the connection that
    /// records the last request needed. The wait is bounded, so a test whose requests never arrive fails instead of
    /// hanging the run.
    ///
    /// ```swift
    /// async let answer = client.complete(request)
    /// try await server.waitForRequests(1, model: "gpt-4o")
    /// ```
    ///
    /// - Parameters:
    ///   - count: The number of requests to wait for, counted since the start or the last ``reset()``.
    ///   - model: Counts only the requests for this model when given.
    ///   - timeout: The longest real time to wait.
    /// - Throws: ``WaitTimeout`` when the requests have not arrived within `timeout` or before the server shut down;
    ///   `CancellationError` when the waiting task is cancelled.
    public func waitForRequests(_ count: Int, model: String? = nil, timeout: Duration = .seconds(30)) async throws {
        try await self.wait(until: .requests(count, model: model), timeout: timeout) {
            let arrived = model.map { self.requests(for: $0).count } ?? self.requests.count
            let what = model.map { "\(count) requests for \(String(reflecting: $0))" } ?? "\(count) requests"
            return "waited \(timeout) for \(what), but \(arrived) arrived"
        }
    }

    /// Suspends until at least `count` requests have been abandoned by their client (see ``abandonedRequests``).
    ///
    /// Returns at once when they already have.
    ///
    /// - Parameters:
    ///   - count: The number of abandoned requests to wait for.
    ///   - timeout: The longest real time to wait.
    /// - Throws: ``WaitTimeout`` when they have not been abandoned within `timeout` or before the server shut down;
    ///   `CancellationError` when the waiting task is cancelled.
    public func waitForAbandonedRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        try await self.wait(until: .abandonedRequests(count), timeout: timeout) {
            "waited \(timeout) for \(count) abandoned requests, but \(self.abandonedRequests) were abandoned"
        }
    }

    /// A wait on the server that ended before what it waited for happened.
    public struct WaitTimeout: Error, Sendable, CustomStringConvertible {
        /// What was waited for and what happened instead.
        public var description: String
    }

    private func wait(
        until condition: ServerState.WaitCondition,
        timeout: Duration,
        describe: @escaping @Sendable () -> String
    ) async throws {
        let met = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.state.wait(until: condition)
                return self.state.isMet(condition)
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let met = try await group.next() ?? false
            group.cancelAll()
            return met
        }
        try Task.checkCancellation()
        if !met { throw WaitTimeout(description: describe()) }
    }
}


/// Starts a ``MockLLMServer``, runs `body` with it, and shuts it down, whether `body` returns or throws.
///
/// ```swift
/// try await withMockLLMServer { server in
///     server.script("gemini-2.0-flash", .status(503))
///     // ... run the client against server.baseURL ...
/// }
/// ```
///
/// - Parameters:
///   - host: The address to listen on.
///   - port: The port to listen on; `0` picks a free one.
///   - isolation: The actor `body` runs on; inferred from the caller.
///   - body: The code using the server.
/// - Returns: What `body` returns.
/// - Throws: What starting or shutting down the server throws, or what `body` throws.
public func withMockLLMServer<Result>(
    host: String = "127.0.0.1",
    port: Int = 0,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (MockLLMServer) async throws -> Result
) async throws -> Result {
    let server = try await MockLLMServer.start(host: host, port: port)
    let result: Result
    do {
        result = try await body(server)
    } catch {
        try? await server.shutdown()
        throw error
    }
    try await server.shutdown()
    return result
}

/// An error starting ``MockLLMServer``.
public struct MockLLMServerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameter message: What went wrong.
    public init(message: String) {
        self.message = message
    }

    /// The message.
    public var description: String {
        self.message
    }
}
