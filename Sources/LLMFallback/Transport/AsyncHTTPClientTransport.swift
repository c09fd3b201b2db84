import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// The default transport: AsyncHTTPClient with a shared connection pool.
///
/// Connections are kept alive and reused across calls and across chains that share the client; by default the
/// process-wide `HTTPClient.shared` is used, so nothing needs shutting down.
public struct AsyncHTTPClientTransport: HTTPTransport {
    /// The client requests go through.
    public let client: HTTPClient

    /// Creates a transport over `client` (the process-wide shared client by default).
    public init(client: HTTPClient = .shared) {
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
            response = try await client.execute(outgoing, timeout: .nanoseconds(Int64(timeout.milliseconds * 1_000_000)))
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
