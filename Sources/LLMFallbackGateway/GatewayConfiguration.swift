import Prometheus

/// Everything that tunes a ``Gateway``. Every field has a default; set only what you change.
///
/// ```swift
/// var configuration = GatewayConfiguration(host: "0.0.0.0", port: 8080)
/// configuration.apiKeys = [ProcessInfo.processInfo.environment["LLM_FALLBACK_GATEWAY_KEY"]!]
/// configuration.maxBodySize = 8 << 20
/// configuration.limits.maxConcurrentRequests = 512
/// let gateway = try Gateway(chains: ["default": chain], configuration: configuration, logger: logger)
/// try await gateway.run()
/// ```
///
/// The gateway fails closed: ``Gateway/init(chains:configuration:logger:)`` refuses an empty key, and a
/// non-loopback ``host`` without keys unless ``allowUnauthenticated`` says so. Its description and its mirror
/// (`dump`, `print`, `String(reflecting:)`) never show a key.
public struct GatewayConfiguration: Sendable {
    /// The address to listen on (`127.0.0.1` by default: only this machine).
    public var host: String
    /// The TCP port to listen on; `0` picks a free one (logged at start-up and passed to `onServerRunning`).
    public var port: Int
    /// The keys clients must send as `Authorization: Bearer <key>`. Empty (the default) turns authentication off,
    /// which a non-loopback ``host`` accepts only with ``allowUnauthenticated``.
    ///
    /// When set, every route except `GET /health` requires one of them; keys are compared in constant time. An
    /// empty key, or one with spaces or control characters (which no client could send), is a configuration error
    /// (``GatewayConfigurationError``), never a key that is quietly left out.
    public var apiKeys: [String]
    /// Whether the gateway may listen on a non-loopback address without ``apiKeys`` (`false` by default).
    ///
    /// Without keys, anyone who can reach the port spends your provider credits. On a loopback address
    /// (`127.0.0.0/8`, `::1`, `localhost`) authentication may be off without this; the start-up log says so either
    /// way.
    public var allowUnauthenticated: Bool
    /// The largest request body accepted, in bytes (4 MiB by default); larger bodies are answered `413`.
    public var maxBodySize: Int
    /// How long in-flight requests and streams may run after SIGTERM or SIGINT before they are cancelled.
    public var shutdownGracePeriod: Duration
    /// How long an idle keep-alive connection stays open; `nil` keeps it until the client closes it.
    public var idleTimeout: Duration?
    /// Bounds on the work one gateway takes on and on how long a client may take to send a request.
    public var limits: Limits
    /// How a request's `model` finds its chain: names, aliases, patterns and a default (by default, chain names
    /// only).
    public var modelRouting = ModelRouting()
    /// Whether error bodies carry what the upstreams said (`false` by default).
    ///
    /// By default a `502` names the providers tried, their error classes and HTTP statuses, and nothing else:
    /// no upstream host or port, no upstream request id, no upstream error text (which may quote a user's prompt,
    /// or an internal address). Set it to debug a deployment; the log has the details either way. Keys are
    /// removed in both cases.
    public var exposeUpstreamErrors: Bool
    /// The Prometheus registry `GET /metrics` serves; `nil` (the default) uses ``GatewayMetrics/registry``.
    ///
    /// The gateway registers its own metrics there directly. The library's swift-metrics figures appear there only
    /// when swift-metrics is bootstrapped with a `PrometheusMetricsFactory` over the same registry (see
    /// ``bootstrapMetrics``).
    public var metricsRegistry: PrometheusCollectorRegistry?
    /// Whether ``Gateway/run()`` bootstraps swift-metrics with a `PrometheusMetricsFactory` over the registry,
    /// once per process (`true` by default). Nothing is bootstrapped when another backend already was.
    ///
    /// swift-metrics handles are bound when they are created, so a chain built before the bootstrap reports its
    /// per-provider counters nowhere: call ``GatewayMetrics/bootstrap(registry:)`` before building the chains.
    public var bootstrapMetrics: Bool
    /// The `Server` response header's value, such as `llm-fallback`; `nil` (the default) sends no `Server` header.
    public var serverName: String?
    /// On the Anthropic Messages surface, how long a stream may wait for its first content before its head, a
    /// `message_start` and then a `ping` every such interval are sent (15 seconds by default; `nil` for never):
    /// proxies in between (nginx cuts a silent upstream after 60 s) and clients keep the connection while a
    /// provider thinks. Until then the stream's status is honest (a failure is a `4xx`/`5xx`); after it, a failure
    /// is an `error` event, as from Anthropic itself. Pings also follow every such interval of a stream's life.
    public var streamKeepAlive: Duration? = .seconds(15)

    /// Bounds on what one gateway takes on: concurrent work, and the time a client may take to send a request.
    ///
    /// Beyond ``maxConcurrentRequests`` or ``maxOpenStreams`` a chat completion is answered at once with `503`,
    /// `Retry-After: 1` and code `gateway_overloaded` in OpenAI's error format: nothing queues. A client that sends
    /// its request head slower than ``requestHeaderTimeout`` or its body slower than ``requestBodyTimeout``
    /// (in total, however steadily the bytes trickle) is disconnected.
    ///
    /// ```swift
    /// var limits = GatewayConfiguration.Limits()
    /// limits.maxConcurrentRequests = 256
    /// limits.requestBodyTimeout = .seconds(20)
    /// ```
    public struct Limits: Sendable, Hashable {
        /// The most chat completions handled at once, streams included (1,024 by default).
        ///
        /// A request holds its place from the moment its head is read until its answer (or its stream's last
        /// event) is written, so this also bounds the request bodies held in memory
        /// (``GatewayConfiguration/maxBodySize`` each) and the upstream connections waited for.
        public var maxConcurrentRequests: Int
        /// The most streamed completions open at once (1,024 by default); each also counts as a request.
        public var maxOpenStreams: Int
        /// The longest a client may take to send a request's head (line and headers), from its first byte
        /// (10 seconds by default). Waiting for the next request on a keep-alive connection is
        /// ``GatewayConfiguration/idleTimeout``'s business.
        public var requestHeaderTimeout: Duration
        /// The longest a client may take to send a whole request body, from the end of its head (60 seconds by
        /// default): a total, not a gap between reads, so trickling bytes does not extend it.
        public var requestBodyTimeout: Duration
        /// How long the gateway keeps reading (and discarding) a body it refused, such as one over the size
        /// limit, after answering, before it closes the connection (5 seconds by default).
        ///
        /// A client that sends its whole body before it reads (Python's `urllib` does) then gets the answer
        /// rather than a reset connection, as with nginx's lingering close.
        public var lingeringCloseTimeout: Duration

        /// Creates limits; every value has a default.
        ///
        /// - Parameters:
        ///   - maxConcurrentRequests: The most chat completions handled at once.
        ///   - maxOpenStreams: The most streamed completions open at once.
        ///   - requestHeaderTimeout: The longest a client may take to send a request head.
        ///   - requestBodyTimeout: The longest a client may take to send a request body.
        ///   - lingeringCloseTimeout: How long a refused body is read and discarded before the connection closes.
        public init(
            maxConcurrentRequests: Int = 1024,
            maxOpenStreams: Int = 1024,
            requestHeaderTimeout: Duration = .seconds(10),
            requestBodyTimeout: Duration = .seconds(60),
            lingeringCloseTimeout: Duration = .seconds(5)
        ) {
            self.maxConcurrentRequests = maxConcurrentRequests
            self.maxOpenStreams = maxOpenStreams
            self.requestHeaderTimeout = requestHeaderTimeout
            self.requestBodyTimeout = requestBodyTimeout
            self.lingeringCloseTimeout = lingeringCloseTimeout
        }
    }

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - host: The address to listen on.
    ///   - port: The TCP port; `0` picks a free one.
    ///   - apiKeys: The keys clients must present; empty for none.
    ///   - allowUnauthenticated: Whether a non-loopback `host` may go without keys.
    ///   - maxBodySize: The largest request body accepted, in bytes.
    ///   - shutdownGracePeriod: How long in-flight work may finish after a shutdown signal.
    ///   - idleTimeout: How long an idle keep-alive connection stays open.
    ///   - limits: Concurrency limits and client timeouts.
    ///   - exposeUpstreamErrors: Whether error bodies carry what the upstreams said.
    ///   - metricsRegistry: The registry `/metrics` serves; `nil` for ``GatewayMetrics/registry``.
    ///   - bootstrapMetrics: Whether ``Gateway/run()`` bootstraps swift-metrics over the registry.
    ///   - serverName: The `Server` header's value, or `nil` for none.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        apiKeys: [String] = [],
        allowUnauthenticated: Bool = false,
        maxBodySize: Int = 4 << 20,
        shutdownGracePeriod: Duration = .seconds(30),
        idleTimeout: Duration? = .seconds(120),
        limits: Limits = Limits(),
        exposeUpstreamErrors: Bool = false,
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        bootstrapMetrics: Bool = true,
        serverName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.apiKeys = apiKeys
        self.allowUnauthenticated = allowUnauthenticated
        self.maxBodySize = maxBodySize
        self.shutdownGracePeriod = shutdownGracePeriod
        self.idleTimeout = idleTimeout
        self.limits = limits
        self.exposeUpstreamErrors = exposeUpstreamErrors
        self.metricsRegistry = metricsRegistry
        self.bootstrapMetrics = bootstrapMetrics
        self.serverName = serverName
    }

    /// Whether ``host`` is a loopback address: `127.0.0.0/8`, `::1` or `localhost`.
    public var isLoopback: Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name == "localhost" || name == "::1" || name == "0:0:0:0:0:0:0:1" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && (Int(part) ?? 256) <= 255
        }
    }

    /// Checks the configuration as ``Gateway/init(chains:configuration:logger:)`` does.
    ///
    /// - Throws: ``GatewayConfigurationError`` for the first problem: an empty or unsendable key, a non-loopback
    ///   host without keys or ``allowUnauthenticated``, a limit below 1, a negative or absurd duration.
    public func validate() throws(GatewayConfigurationError) {
        for (index, key) in apiKeys.enumerated() {
            if key.isEmpty {
                throw GatewayConfigurationError(
                    .emptyAPIKey,
                    "apiKeys[\(index)] is empty: an empty key would turn authentication off; remove it or set it"
                )
            }
            if key.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
            {
                throw GatewayConfigurationError(
                    .invalidAPIKey,
                    "apiKeys[\(index)] contains spaces or control characters, which no client can send in an "
                        + "Authorization header"
                )
            }
        }
        if apiKeys.isEmpty && !allowUnauthenticated && !isLoopback {
            throw GatewayConfigurationError(
                .unauthenticatedPublicAddress,
                "the gateway would listen on \(host) without API keys: anyone who can reach it could use your "
                    + "providers; set apiKeys, listen on a loopback address, or set allowUnauthenticated"
            )
        }
        guard (0...65535).contains(port) else {
            throw GatewayConfigurationError(.invalidValue, "port \(port) is not a TCP port")
        }
        guard maxBodySize >= 1 else {
            throw GatewayConfigurationError(.invalidValue, "maxBodySize must be at least 1, got \(maxBodySize)")
        }
        guard limits.maxConcurrentRequests >= 1 else {
            throw GatewayConfigurationError(
                .invalidValue,
                "limits.maxConcurrentRequests must be at least 1, got \(limits.maxConcurrentRequests)"
            )
        }
        guard limits.maxOpenStreams >= 1 else {
            throw GatewayConfigurationError(
                .invalidValue,
                "limits.maxOpenStreams must be at least 1, got \(limits.maxOpenStreams)"
            )
        }
        let durations: [(String, Duration?)] = [
            ("shutdownGracePeriod", shutdownGracePeriod), ("idleTimeout", idleTimeout),
            ("limits.requestHeaderTimeout", limits.requestHeaderTimeout),
            ("limits.requestBodyTimeout", limits.requestBodyTimeout),
            ("limits.lingeringCloseTimeout", limits.lingeringCloseTimeout),
        ]
        for case let (name, duration?) in durations {
            guard duration >= .zero, duration <= Self.longestDuration else {
                throw GatewayConfigurationError(
                    .invalidValue,
                    "\(name) must be between 0 and 24 hours"
                )
            }
        }
        for case let (name, duration?) in durations.dropFirst() where duration == .zero {
            throw GatewayConfigurationError(.invalidValue, "\(name) must be greater than zero")
        }
    }

    /// The longest duration any setting accepts: a day.
    static let longestDuration = Duration.seconds(86_400)
}

extension GatewayConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The address, the number of keys (never the keys) and the limits.
    public var description: String {
        var text = "\(host):\(port), "
        text += apiKeys.isEmpty ? "no API keys" : "\(apiKeys.count) API key\(apiKeys.count == 1 ? "" : "s")"
        if allowUnauthenticated { text += " (unauthenticated allowed)" }
        text += ", max body \(maxBodySize) bytes, at most \(limits.maxConcurrentRequests) requests and "
        text += "\(limits.maxOpenStreams) streams"
        if exposeUpstreamErrors { text += ", upstream errors exposed" }
        return text
    }

    public var debugDescription: String { "GatewayConfiguration(\(description))" }

    /// Every field but the keys, which show as a count.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "apiKeys": "<\(apiKeys.count) redacted>",
                "allowUnauthenticated": allowUnauthenticated, "maxBodySize": maxBodySize,
                "shutdownGracePeriod": shutdownGracePeriod, "idleTimeout": idleTimeout as Any, "limits": limits,
                "exposeUpstreamErrors": exposeUpstreamErrors, "bootstrapMetrics": bootstrapMetrics,
                "serverName": serverName as Any,
            ],
            displayStyle: .struct
        )
    }
}

/// A ``GatewayConfiguration`` the gateway refuses to run with.
///
/// Its message names the setting and never a key's value.
public struct GatewayConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it is; new codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case emptyAPIKey = "empty_api_key"
            case invalidAPIKey = "invalid_api_key"
            case unauthenticatedPublicAddress = "unauthenticated_public_address"
            case invalidValue = "invalid_value"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A key is the empty string (often an environment variable that is set but empty).
        public static let emptyAPIKey = Code(.emptyAPIKey)
        /// A key has spaces or control characters.
        public static let invalidAPIKey = Code(.invalidAPIKey)
        /// A non-loopback host without keys and without ``GatewayConfiguration/allowUnauthenticated``.
        public static let unauthenticatedPublicAddress = Code(.unauthenticatedPublicAddress)
        /// A number or duration out of range.
        public static let invalidValue = Code(.invalidValue)

        /// A short, stable label such as `empty_api_key`.
        public var description: String { base.rawValue }
    }

    /// What kind of problem it is.
    public var code: Code
    /// What is wrong, naming the setting.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "invalid gateway configuration: \(message)" }
}
