import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The connections of one ``NIOHTTPClientTransport``, per scheme, host and port: idle ones (reused last in, first
/// out, preferring the caller's event loop), a count of open ones against the limit, and the requests waiting
/// for one when the limit is reached: at most ``NIOHTTPClientTransport/Configuration/maximumWaitersPerHost`` of
/// them, each for at most ``NIOHTTPClientTransport/Configuration/connectionWaitTimeout``.
final class HTTPConnectionPool: Sendable {
    struct Host {
        var idle: [HTTP1Connection] = []
        /// Connections open or being opened.
        var open = 0
        var waiters = CircularBuffer<RequestExecution>()
    }

    let configuration: NIOHTTPClientTransport.Configuration
    private let hosts = Mutex<[ConnectionKey: Host]>([:])
    private let tlsContext = Mutex<NIOSSLContext?>(nil)

    init(configuration: NIOHTTPClientTransport.Configuration) {
        self.configuration = configuration
    }

    var openConnections: Int { hosts.locked { $0.values.reduce(0) { $0 + $1.open } } }
    var idleConnections: Int { hosts.locked { $0.values.reduce(0) { $0 + $1.idle.count } } }

    // MARK: Leasing

    private enum Decision {
        case use(HTTP1Connection)
        case create
        case wait
        case reject(waiting: Int)
    }

    /// Finds `request` a connection: an idle one (unless `fresh`), a new one, or a place in the queue.
    func lease(for request: RequestExecution, fresh: Bool) {
        let key = request.key
        // Sticky: the caller's own loop when it runs on one.
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let limit = configuration.maximumConnectionsPerHost
        let waiterLimit = configuration.maximumWaitersPerHost
        let decision = hosts.locked { hosts -> Decision in
            Self.decide(&hosts[key, default: Host()], loop: loop, fresh: fresh, limit: limit, waiterLimit: waiterLimit, request: request)
        }
        switch decision {
        case .use(let connection):
            if !request.attach(to: connection) {
                // The request ended meanwhile (cancelled, timed out): the connection goes back.
                release(connection)
            }
        case .create:
            request.armTimer(on: loop)
            connect(key, on: loop, for: request)
        case .wait:
            request.armTimer(on: loop)
            request.armWaitTimer(on: loop, at: .now() + .nanoseconds(configuration.connectionWaitTimeout.clampedNanoseconds))
        case .reject(let waiting):
            request.fail(
                ProviderError.transport(
                    .connection,
                    key,
                    "too many requests waiting for a connection (\(waiting) waiting, \(limit) connections open)"
                ),
                retryable: false
            )
        }
    }

    private static func decide(
        _ host: inout Host,
        loop: any EventLoop,
        fresh: Bool,
        limit: Int,
        waiterLimit: Int,
        request: RequestExecution
    ) -> Decision {
        if !fresh {
            // A connection the server closed is never reused (its close may not have reached the pool yet).
            while let last = host.idle.last, last.channel?.isActive != true {
                host.idle.removeLast()
            }
        }
        if !fresh, !host.idle.isEmpty {
            // Last in, first out, preferring the caller's loop among the most recent few.
            var index = host.idle.count - 1
            let lowest = max(0, host.idle.count - 16)
            while index >= lowest {
                if host.idle[index].eventLoop === loop { break }
                index -= 1
            }
            if index < lowest { index = host.idle.count - 1 }
            return .use(host.idle.remove(at: index))
        }
        if host.open < limit {
            host.open += 1
            return .create
        }
        guard host.waiters.count < waiterLimit else { return .reject(waiting: host.waiters.count) }
        host.waiters.append(request)
        return .wait
    }

    /// Takes a waiting request out of the queue (it was cancelled or timed out); `false` when it is not queued.
    func removeWaiter(_ request: RequestExecution) -> Bool {
        hosts.locked { hosts in
            guard let index = hosts[request.key]?.waiters.firstIndex(where: { $0 === request }) else { return false }
            hosts[request.key]!.waiters.remove(at: index)
            return true
        }
    }

    /// The number of requests waiting for a connection, for tests and diagnostics.
    var waitingRequests: Int { hosts.locked { $0.values.reduce(0) { $0 + $1.waiters.count } } }

    // MARK: Returning and closing

    /// Puts a connection whose response is complete back into the pool, or hands it to a waiting request.
    /// Called on the connection's event loop, or from anywhere for a leased connection that was not used (its
    /// idle timer runs on regardless: ``HTTP1ConnectionStateMachine``).
    func release(_ connection: HTTP1Connection) {
        while true {
            let waiter = hosts.locked { hosts -> RequestExecution? in
                if let waiter = hosts[connection.key]?.waiters.popFirst() { return waiter }
                hosts[connection.key, default: Host()].idle.append(connection)
                return nil
            }
            guard let waiter else { return }
            if waiter.attach(to: connection) { return }
        }
    }

    /// Takes an idle connection out of the pool so it can be closed; `false` when it is in use.
    func removeIdle(_ connection: HTTP1Connection) -> Bool {
        hosts.locked { hosts in
            guard let index = hosts[connection.key]?.idle.lastIndex(where: { $0 === connection }) else { return false }
            hosts[connection.key]!.idle.remove(at: index)
            return true
        }
    }

    /// Accounts for a connection that closed (or never opened), and opens one for a waiting request if any.
    func connectionClosed(_ key: ConnectionKey, _ connection: HTTP1Connection?) {
        let limit = configuration.maximumConnectionsPerHost
        let waiter = hosts.locked { hosts -> RequestExecution? in
            guard var host = hosts.removeValue(forKey: key) else { return nil }
            defer { hosts[key] = host }
            if let connection, let index = host.idle.lastIndex(where: { $0 === connection }) {
                host.idle.remove(at: index)
            }
            host.open -= 1
            if host.open < limit, let waiter = host.waiters.popFirst() {
                host.open += 1
                return waiter
            }
            return nil
        }
        if let waiter {
            connect(key, on: MultiThreadedEventLoopGroup.singleton.any(), for: waiter)
        }
    }

    // MARK: Connecting

    private func connect(_ key: ConnectionKey, on loop: any EventLoop, for request: RequestExecution) {
        let tls: NIOSSLContext?
        do {
            tls = key.isTLS ? try sslContext() : nil
        } catch {
            connectionClosed(key, nil)
            request.fail(ProviderError.transport(.connection, key, "TLS configuration failed: \(error)"), retryable: false)
            return
        }
        let pool = self
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.clampedNanoseconds))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        let serverName = key.host.isIPAddress ? nil : key.host
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try sync.addHandler(HTTPRequestEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(
                        leftOverBytesStrategy: .dropBytes,
                        informationalResponseStrategy: .drop,
                        limitConfiguration: Self.responseLimits
                    )))
                    try sync.addHandler(HTTP1Connection(pool: pool, key: key, eventLoop: channel.eventLoop))
                }
            }
        bootstrap.connect(host: key.host, port: key.port).whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: HTTP1Connection.self), channel.isActive else {
                    pool.connectionClosed(key, nil)
                    channel.close(promise: nil)
                    request.fail(ProviderError.transport(.connection, key, "connection closed while opening"), retryable: false)
                    return
                }
                connection.adopt()
                if !request.attach(to: connection) {
                    // The request ended while connecting: keep the connection for the next one.
                    pool.release(connection)
                }
            case .failure(let error):
                pool.connectionClosed(key, nil)
                if let error = error as? ChannelError, case .connectTimeout = error {
                    request.fail(ProviderError.transport(.timeout, key, "connect timed out"), retryable: false)
                } else {
                    request.fail(ProviderError.transport(.connection, key, "cannot connect: \(describeNetworkError(error))"), retryable: false)
                }
            }
        }
    }

    /// The bounds on a response head: 80 KiB of header fields (NIO's default), at most 1,000 of them.
    static let responseLimits: NIOHTTPDecoderLimitConfiguration = {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 80 * 1024
        limits.maxHeaderListSize = 80 * 1024
        limits.maxHeaderFieldCount = 1_000
        return limits
    }()

    private func sslContext() throws -> NIOSSLContext {
        try tlsContext.locked { context in
            if let context { return context }
            let created = try NIOSSLContext(configuration: configuration.tlsConfiguration)
            context = created
            return created
        }
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 address literal (which TLS does not send as a server name).
    var isIPAddress: Bool {
        if contains(":") { return true }
        var parts = 0
        for part in split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit) else { return false }
            parts += 1
        }
        return parts == 4
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
