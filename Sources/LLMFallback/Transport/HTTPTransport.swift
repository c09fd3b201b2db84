import NIOCore
import NIOHTTP1

/// An HTTP request an adapter built: method, URL, headers and body.
public struct HTTPRequestParts: Sendable {
    /// The method, `POST` for every chat API.
    public var method: HTTPMethod
    /// The full URL, query included.
    public var url: String
    /// The headers, the key among them.
    public var headers: HTTPHeaders
    /// The body.
    public var body: ByteBuffer?

    /// Creates request parts.
    public init(method: HTTPMethod = .POST, url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A response's head and its body, which may still be arriving.
public struct TransportResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// The response headers.
    public var headers: HTTPHeaders
    /// The body, as byte chunks in arrival order.
    public var body: ResponseBody

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders, body: ResponseBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The seam between the chain and the network: send a request, get the head and a streamed body.
///
/// ``AsyncHTTPClientTransport`` is the default; ``NIOHTTPClientTransport`` is a leaner client for gateways. Implement this to put another client behind the chain, or to
/// intercept requests in a test.
///
/// An implementation throws ``ProviderError`` of kind ``ProviderError/Kind/connection`` or
/// ``ProviderError/Kind/timeout`` for network failures (other errors are treated as connection errors), and
/// `CancellationError` when the calling task is cancelled; cancelling the task must cancel the request and
/// release its connection, also while the body is being read.
public protocol HTTPTransport: Sendable {
    /// Sends a request.
    ///
    /// - Parameters:
    ///   - request: The request to send.
    ///   - timeout: The longest time to wait for the response head.
    /// - Returns: The head and a body to read.
    func send(_ request: HTTPRequestParts, timeout: Duration) async throws -> TransportResponse
}

/// A response body: an async sequence of byte chunks.
public struct ResponseBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    enum Storage: Sendable {
        case buffer(ByteBuffer)
        case stream(AsyncThrowingStream<ByteBuffer, any Error>)
        case custom(@Sendable () -> @Sendable () async throws -> ByteBuffer?)
        case streaming(StreamedResponseBody.Handle)
    }

    let storage: Storage

    /// A body held in memory.
    public init(_ buffer: ByteBuffer) { storage = .buffer(buffer) }

    /// Whether the whole body is already here (reading it never waits).
    var isInMemory: Bool {
        if case .buffer = storage { return true }
        return false
    }

    /// A body produced by a stream.
    public init(_ stream: AsyncThrowingStream<ByteBuffer, any Error>) { storage = .stream(stream) }

    /// A body arriving on a ``NIOHTTPClientTransport`` connection.
    init(streaming body: StreamedResponseBody) { storage = .streaming(StreamedResponseBody.Handle(body)) }

    /// A body read through any async sequence of byte buffers.
    public init<Body: AsyncSequence & Sendable>(_ body: Body) where Body.Element == ByteBuffer, Body.AsyncIterator: Sendable {
        storage = .custom({
            let box = IteratorBox(body.makeAsyncIterator())
            return { try await box.next() }
        })
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        enum State {
            case buffer(ByteBuffer?)
            case stream(AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator)
            case custom(@Sendable () async throws -> ByteBuffer?)
            case streaming(StreamedResponseBody.Handle)
        }
        var state: State

        public mutating func next() async throws -> ByteBuffer? {
            switch state {
            case .buffer(let buffer):
                state = .buffer(nil)
                return buffer
            case .stream(var iterator):
                let element = try await iterator.next()
                state = .stream(iterator)
                return element
            case .custom(let next):
                return try await next()
            case .streaming(let handle):
                return try await handle.body.next()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch storage {
        case .buffer(let buffer): return AsyncIterator(state: .buffer(buffer))
        case .stream(let stream): return AsyncIterator(state: .stream(stream.makeAsyncIterator()))
        case .custom(let make): return AsyncIterator(state: .custom(make()))
        case .streaming(let handle): return AsyncIterator(state: .streaming(handle))
        }
    }

    /// Reads the whole body.
    ///
    /// - Parameter maxBytes: The largest body accepted.
    /// - Throws: ``ProviderError`` of kind ``ProviderError/Kind/invalidResponse`` when the body is larger.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var iterator = makeAsyncIterator()
        guard var result = try await iterator.next() else { return ByteBuffer() }
        while var next = try await iterator.next() {
            result.writeBuffer(&next)
            if result.readableBytes > maxBytes {
                throw ProviderError(.invalidResponse, message: "response body larger than \(maxBytes) bytes")
            }
        }
        if result.readableBytes > maxBytes {
            throw ProviderError(.invalidResponse, message: "response body larger than \(maxBytes) bytes")
        }
        return result
    }
}

private final class IteratorBox<Iterator: AsyncIteratorProtocol & Sendable>: @unchecked Sendable where Iterator.Element == ByteBuffer {
    // Only ever used by the single task reading the body.
    var iterator: Iterator
    init(_ iterator: Iterator) { self.iterator = iterator }
    func next() async throws -> ByteBuffer? { try await iterator.next() }
}
