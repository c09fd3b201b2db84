import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A lean HTTP/1.1 client on SwiftNIO, for gateways that send thousands of requests a second.
///
/// It does what a failover chain needs and nothing else: a keep-alive connection pool per scheme, host and port,
/// the request head and body written in one flush, the response head handed over with one resumption, and the
/// body streamed part by part (a response that arrives in one read is handed over whole, with no further
/// suspension). No redirects, proxies or decompression. HTTPS uses swift-nio-ssl, with certificate and hostname
/// verification against the system's trust roots unless ``Configuration/tlsConfiguration`` says otherwise.
///
/// A request prefers a connection on the event loop the caller runs on, so a gateway request served on one loop
/// talks to its upstream on the same loop. A connection the server closed is never reused.
///
/// Its safety rules are those of AsyncHTTPClient, and live in one value-type state machine
/// (`HTTP1ConnectionStateMachine`, unit-tested without sockets):
///
/// - **A request is never sent twice.** Once any byte of it is written, a close or an error fails it with a
///   ``ProviderError/Kind/connection`` error (the server may have acted on it: billed it, run its tools); only a
///   request refused before anything was written (a pooled connection that closed on its way to the request) goes
///   to another connection. Retrying is the chain's decision, by its policy.
/// - **Headers are validated** before anything is written: names must be tokens, values must not hold CR, LF, NUL
///   or another control character but tab (``ProviderError/Kind/misconfigured``, naming the header, never quoting
///   its value).
/// - **A connection is reused only after a complete, framed, keep-alive response**, never with its reads paused,
///   and never after a body that ended because the connection closed.
/// - **Responses are bounded**: a response head holds at most 80 KiB of header fields and at most
///   1,000 fields; a malformed status line, header or length (an absurd `Content-Length` included) is a
///   ``ProviderError/Kind/invalidResponse`` error, and a body cut short a ``ProviderError/Kind/connection`` error.
///   Body sizes are bounded by whoever reads the body (``ResponseBody/collect(upTo:)``, the chain's limits).
/// - **The wait for a connection is bounded**: past ``Configuration/maximumConnectionsPerHost`` a request waits
///   in a queue of at most ``Configuration/maximumWaitersPerHost`` (beyond it: a ``ProviderError/Kind/connection``
///   error at once), for at most ``Configuration/connectionWaitTimeout`` (then a ``ProviderError/Kind/timeout``
///   error); the chain fails over on both.
///
/// Error messages name the upstream's host and port (`connection closed before the response (10.0.0.7:8000)`),
/// never its path, query or headers; the gateway keeps them out of its answers unless told otherwise.
///
/// ```swift
/// let transport = NIOHTTPClientTransport()
/// let chain = FallbackChain(providers, transport: transport)
/// ```
///
/// Share one transport between chains: each transport has its own pool. Idle connections close after
/// ``Configuration/idleTimeout``, so nothing needs shutting down.
public struct NIOHTTPClientTransport: HTTPTransport {
    /// How the transport connects and pools connections.
    public struct Configuration: Sendable {
        /// The most connections open (or opening) to one scheme, host and port; further requests wait for one.
        /// Generous by default: a gateway holds one upstream connection per open stream.
        public var maximumConnectionsPerHost: Int
        /// How long an unused keep-alive connection stays open.
        public var idleTimeout: Duration
        /// The longest time to establish a connection (each request's own timeout may end it sooner).
        public var connectTimeout: Duration
        /// How many body bytes may wait for a slow reader before the transport stops reading from the socket.
        public var maximumBufferedBodyBytes: Int
        /// The most requests that wait for a connection to one scheme, host and port once
        /// ``maximumConnectionsPerHost`` are open; a request beyond them fails at once with a
        /// ``ProviderError/Kind/connection`` error, and the chain fails over. Each waiting request holds its body.
        public var maximumWaitersPerHost: Int
        /// The longest a request waits in that queue for a connection, after which it fails with a
        /// ``ProviderError/Kind/timeout`` error and the chain fails over (the request's own timeout may end it
        /// sooner).
        public var connectionWaitTimeout: Duration
        /// TLS settings for `https` URLs: certificate and hostname verification against the system's trust
        /// roots by default.
        public var tlsConfiguration: TLSConfiguration

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - maximumConnectionsPerHost: The most connections to one scheme, host and port (2,048 by default).
        ///   - idleTimeout: How long an unused connection stays open (60 seconds by default).
        ///   - connectTimeout: The longest time to establish a connection (10 seconds by default).
        ///   - maximumBufferedBodyBytes: The body bytes buffered for a slow reader before reading pauses (1 MiB
        ///     by default).
        ///   - maximumWaitersPerHost: The most requests waiting for a connection to one scheme, host and port
        ///     (512 by default; 0: none wait, a request finding every connection busy fails at once).
        ///   - connectionWaitTimeout: The longest wait for a connection (10 seconds by default).
        ///   - tlsConfiguration: TLS settings for `https` URLs (full verification by default).
        public init(
            maximumConnectionsPerHost: Int = 2048,
            idleTimeout: Duration = .seconds(60),
            connectTimeout: Duration = .seconds(10),
            maximumBufferedBodyBytes: Int = 1 << 20,
            maximumWaitersPerHost: Int = 512,
            connectionWaitTimeout: Duration = .seconds(10),
            tlsConfiguration: TLSConfiguration = .makeClientConfiguration()
        ) {
            self.maximumConnectionsPerHost = max(1, maximumConnectionsPerHost)
            self.idleTimeout = idleTimeout
            self.connectTimeout = connectTimeout
            self.maximumBufferedBodyBytes = max(1, maximumBufferedBodyBytes)
            self.maximumWaitersPerHost = max(0, maximumWaitersPerHost)
            self.connectionWaitTimeout = connectionWaitTimeout
            self.tlsConfiguration = tlsConfiguration
        }
    }

    /// The transport's configuration.
    public var configuration: Configuration { pool.configuration }

    let pool: HTTPConnectionPool

    /// Creates a transport with its own connection pool.
    ///
    /// - Parameter configuration: Pool, timeout and TLS settings.
    public init(configuration: Configuration = Configuration()) {
        pool = HTTPConnectionPool(configuration: configuration)
    }

    /// Sends a request on a pooled connection and returns as soon as the response head is in.
    ///
    /// - Parameters:
    ///   - request: The request; `Host` and `Content-Length` are set from its URL and body.
    ///   - timeout: The longest time for connecting, sending and receiving the response head.
    /// - Returns: The status, the headers and the body, which may still be arriving.
    /// - Throws: ``ProviderError`` of kind ``ProviderError/Kind/connection`` when the connection fails or closes
    ///   before the response is complete (also from the body), or too many requests wait for a connection;
    ///   ``ProviderError/Kind/timeout`` when `timeout` or ``Configuration/connectionWaitTimeout`` passes;
    ///   ``ProviderError/Kind/invalidResponse`` for a malformed response; ``ProviderError/Kind/misconfigured``
    ///   for a URL that is not `http` or `https` or a header that may not be sent (nothing is sent then); and
    ///   `CancellationError` when the task is cancelled (the connection is then closed).
    public func send(_ request: HTTPRequestParts, timeout: Duration) async throws -> TransportResponse {
        try await send(request, timeout: timeout, boundingBody: false)
    }

    /// As ``send(_:timeout:)``; with `boundingBody`, `timeout` bounds the body too: a body still arriving when it
    /// passes fails for its reader with a ``ProviderError/Kind/timeout`` error ("no complete response within"),
    /// and the connection closes. The chain bounds a non-streamed attempt so, end to end, with no task or timer
    /// of its own.
    func send(_ request: HTTPRequestParts, timeout: Duration, boundingBody: Bool) async throws -> TransportResponse {
        let target = try RequestTarget(parsing: request.url)
        var headers = request.headers
        if !headers.contains(name: "host") {
            headers.add(name: "host", value: target.hostHeader)
        }
        headers.replaceOrAdd(name: "content-length", value: String(request.body?.readableBytes ?? 0))
        headers.remove(name: "transfer-encoding")
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: target.pathAndQuery, headers: headers)
        let closeAfter = try RequestValidation.validate(head)
        let execution = RequestExecution(
            pool: pool,
            key: target.key,
            head: head,
            body: request.body,
            closeAfter: closeAfter,
            timeout: timeout,
            boundsBody: boundingBody
        )
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<TransportResponse, any Error>) in
                execution.start(continuation)
            }
        } onCancel: {
            execution.cancel()
        }
    }

    /// The number of connections open or being opened, for tests and diagnostics.
    var openConnections: Int { pool.openConnections }

    /// The number of idle connections in the pool, for tests and diagnostics.
    var idleConnections: Int { pool.idleConnections }

    /// The number of requests waiting for a connection, for tests and diagnostics.
    var waitingRequests: Int { pool.waitingRequests }
}

/// Where a connection goes: scheme, host and port.
struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    var isTLS: Bool
    var host: String
    var port: Int

    var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A URL split into what the transport needs, without Foundation's `URL`.
struct RequestTarget: Sendable, Equatable {
    var key: ConnectionKey
    /// The `Host` header: the host, bracketed when IPv6, with the port when it is not the scheme's default.
    var hostHeader: String
    /// The path and query, `/` when the URL has no path.
    var pathAndQuery: String

    init(parsing url: String) throws {
        let utf8 = url.utf8
        let isTLS: Bool
        var rest: Substring.UTF8View
        if Self.hasPrefix(utf8, "https://") {
            isTLS = true
            rest = url.utf8.dropFirst(8)
        } else if Self.hasPrefix(utf8, "http://") {
            isTLS = false
            rest = url.utf8.dropFirst(7)
        } else {
            throw ProviderError(.misconfigured, message: "unsupported URL: only http and https are supported")
        }
        // The authority ends at the first `/`, `?` or `#`.
        let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if authority.contains(UInt8(ascii: "@")) {
            throw ProviderError(.misconfigured, message: "unsupported URL: credentials in URLs are not supported")
        }
        var host: Substring.UTF8View
        var portText: Substring.UTF8View?
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else {
                throw ProviderError(.misconfigured, message: "invalid URL: unterminated IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if let colon = after.first {
                guard colon == UInt8(ascii: ":") else {
                    throw ProviderError(.misconfigured, message: "invalid URL: bad authority")
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw ProviderError(.misconfigured, message: "invalid URL: no host") }
        let defaultPort = isTLS ? 443 : 80
        var port = defaultPort
        if let portText, !portText.isEmpty {
            var value = 0
            for byte in portText {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), value <= 65_535 else {
                    throw ProviderError(.misconfigured, message: "invalid URL: bad port")
                }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            guard (1...65_535).contains(value) else { throw ProviderError(.misconfigured, message: "invalid URL: bad port") }
            port = value
        }
        // Drop a fragment: it is never sent.
        if let hash = rest.firstIndex(of: UInt8(ascii: "#")) { rest = rest[..<hash] }
        let hostString = String(Substring(host)).lowercased()
        let bracketed = hostString.contains(":") ? "[\(hostString)]" : hostString
        self.key = ConnectionKey(isTLS: isTLS, host: hostString, port: port)
        self.hostHeader = port == defaultPort ? bracketed : "\(bracketed):\(port)"
        if rest.isEmpty {
            self.pathAndQuery = "/"
        } else if rest.first == UInt8(ascii: "?") {
            self.pathAndQuery = "/" + String(Substring(rest))
        } else {
            self.pathAndQuery = String(Substring(rest))
        }
    }

    private static func hasPrefix(_ utf8: String.UTF8View, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        var index = utf8.startIndex
        for offset in 0..<count {
            guard index != utf8.endIndex else { return false }
            var byte = utf8[index]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte += 32 }
            if byte != prefix.utf8Start[offset] { return false }
            index = utf8.index(after: index)
        }
        return true
    }
}

extension ProviderError {
    /// A network failure of the transport: the host and port, never the URL's path or query, nor any header.
    static func transport(_ kind: Kind, _ key: ConnectionKey, _ what: String) -> ProviderError {
        ProviderError(kind, message: "\(what) (\(key))")
    }
}

/// The text of a low-level error, for messages.
func describeNetworkError(_ error: any Error) -> String {
    if let error = error as? NIOConnectionError {
        if let first = error.connectionErrors.first { return describeNetworkError(first.error) }
        if let dns = error.dnsAError ?? error.dnsAAAAError { return "name resolution failed: \(dns)" }
        return "no address to connect to"
    }
    if let error = error as? IOError { return error.description }
    return String(describing: error)
}
