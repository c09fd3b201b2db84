import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Tracing

/// The default transport: AsyncHTTPClient with a shared connection pool.
///
/// Connections are kept alive and reused across calls and across chains that share the client; by default the
/// process-wide ``failoverClient`` is used, so nothing needs shutting down.
public struct AsyncHTTPClientTransport: HTTPTransport {
    /// The client requests go through.
    public let client: HTTPClient

    /// A process-wide client tuned for failover, used by default. Unlike `HTTPClient.shared` it does not retry a
    /// refused connection until the request's deadline (a provider that is down fails at once, so the chain can
    /// move on), and it allows up to 2,048 concurrent HTTP/1 connections per host: a gateway holds one upstream
    /// connection per open stream.
    ///
    /// Like any `HTTPClient`, it takes the bootstrapped tracer when it is made (on first use). When that is the no-op
    /// tracer (nothing bootstrapped), it keeps no tracer at all: AsyncHTTPClient would otherwise build a span's
    /// attributes for every request (the URL taken apart, a dictionary) to record nothing: 4-5% of the perf samples
    /// of sequential requests to a local server.
    public static let failoverClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 2048
        configuration.timeout.connect = .seconds(10)
        configuration.tracing.tracer = clientTracer(configuration.tracing.tracer)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The tracer ``failoverClient`` keeps, given the bootstrapped one: none for the no-op tracer.
    static func clientTracer(_ bootstrapped: (any Tracer)?) -> (any Tracer)? {
        bootstrapped is NoOpTracer ? nil : bootstrapped
    }

    /// Creates a transport over `client` (``failoverClient`` by default).
    public init(client: HTTPClient = AsyncHTTPClientTransport.failoverClient) {
        self.client = client
    }

    public func send(_ request: HTTPRequestParts, timeout: Duration) async throws -> TransportResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let body = request.body {
            outgoing.body = .bytes(body)
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, timeout: .nanoseconds(timeout.clampedNanoseconds))
        } catch {
            throw Self.map(error)
        }
        return TransportResponse(
            status: Int(response.status.code),
            headers: response.headers,
            body: ResponseBody(MappedBody(base: response.body))
        )
    }

    static func map(_ error: any Error) -> any Error {
        if error is CancellationError || error is ProviderError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .cancelled: return CancellationError()
            case .deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout:
                return ProviderError(.timeout, message: "\(error)")
            default:
                return ProviderError(.connection, message: "\(error)")
            }
        }
        if Task.isCancelled { return CancellationError() }
        return ProviderError(.connection, message: String(describing: error))
    }
}

/// Maps the client's body errors to ``ProviderError``.
struct MappedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: HTTPClientResponse.Body

    struct AsyncIterator: AsyncIteratorProtocol, @unchecked Sendable {
        // Used by one reading task at a time.
        var base: HTTPClientResponse.Body.AsyncIterator
        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch {
                throw AsyncHTTPClientTransport.map(error)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}
