import Foundation

/// A provider's failure, classified so the chain knows whether to retry, fail over or stop.
///
/// Every adapter maps its wire format's errors (HTTP statuses, error bodies, errors inside a stream, malformed
/// bodies, transport failures) into this one type.
///
/// ```swift
/// do {
///     _ = try await chain.chat("Hello")
/// } catch let error as ProviderError where error.kind == .contentFiltered {
///     print("refused:", error.message)
/// }
/// ```
public struct ProviderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of a failure. A struct with static members, so new classes can be added without breaking
    /// anybody's `switch`.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case rateLimited = "rate limited"
            case overloaded
            case serverError = "server error"
            case timeout
            case connection = "connection error"
            case authentication
            case permissionDenied = "permission denied"
            case notFound = "not found"
            case invalidRequest = "invalid request"
            case contextLengthExceeded = "context length exceeded"
            case contentFiltered = "content filtered"
            case invalidResponse = "invalid response"
            case misconfigured = "misconfigured"
        }
        fileprivate let base: Base

        /// Too many requests or tokens (HTTP 429).
        public static let rateLimited = Kind(base: .rateLimited)
        /// The provider is over capacity (Anthropic 529, `overloaded_error`, HTTP 503).
        public static let overloaded = Kind(base: .overloaded)
        /// A 5xx from the provider.
        public static let serverError = Kind(base: .serverError)
        /// No (complete) answer within the time allowed.
        public static let timeout = Kind(base: .timeout)
        /// Could not connect, or the connection broke.
        public static let connection = Kind(base: .connection)
        /// The key was missing or refused (HTTP 401).
        public static let authentication = Kind(base: .authentication)
        /// The key may not use this model or endpoint (HTTP 403).
        public static let permissionDenied = Kind(base: .permissionDenied)
        /// Unknown model, deployment or endpoint (HTTP 404).
        public static let notFound = Kind(base: .notFound)
        /// The provider refused the request as malformed (HTTP 400, 422).
        public static let invalidRequest = Kind(base: .invalidRequest)
        /// The prompt is longer than the model's context window.
        public static let contextLengthExceeded = Kind(base: .contextLengthExceeded)
        /// A safety or policy filter refused the prompt or the answer.
        public static let contentFiltered = Kind(base: .contentFiltered)
        /// The provider's answer is not what its format promises.
        public static let invalidResponse = Kind(base: .invalidResponse)
        /// The provider entry itself is unusable: an unknown kind, a missing key or base URL.
        public static let misconfigured = Kind(base: .misconfigured)

        /// Every class, for metrics and documentation.
        public static let allCases: [Kind] = [
            .rateLimited, .overloaded, .serverError, .timeout, .connection, .authentication, .permissionDenied,
            .notFound, .invalidRequest, .contextLengthExceeded, .contentFiltered, .invalidResponse, .misconfigured,
        ]

        /// A short, low-cardinality label (`rate_limited`), for metric dimensions and logs.
        public var label: String { base.rawValue.replacingOccurrences(of: " ", with: "_") }

        public var description: String { base.rawValue }

        /// Whether the error is about the request rather than the provider's health (invalid request, context
        /// length, content filter). Such errors do not count against a provider's circuit breaker.
        public var isClientError: Bool {
            self == .invalidRequest || self == .contextLengthExceeded || self == .contentFiltered
        }
    }

    /// The class of failure.
    public var kind: Kind
    /// The HTTP status, when one arrived.
    public var status: Int?
    /// How long the provider asked us to wait (`retry-after-ms`, `retry-after`, Gemini's `RetryInfo`), at most
    /// ``longestRetryAfter``.
    public var retryAfter: Duration?
    /// Whether waiting can help at all. `false` for an exhausted quota or a request larger than the rate limit.
    public var isTransient: Bool
    /// The provider's own error code or type, such as `insufficient_quota` or `overloaded_error`.
    public var code: String?
    /// The provider's request id, for support tickets.
    public var requestID: String?
    /// The provider's message (with any key redacted).
    public var message: String
    /// The label of the chain entry that failed (``Provider/name``), when known.
    public var provider: String?

    /// Creates an error.
    public init(
        _ kind: Kind,
        status: Int? = nil,
        message: String,
        retryAfter: Duration? = nil,
        isTransient: Bool? = nil,
        code: String? = nil,
        requestID: String? = nil,
        provider: String? = nil
    ) {
        self.kind = kind
        self.status = status
        self.message = message
        self.retryAfter = retryAfter.map { $0.clamped(to: Self.longestRetryAfter) }
        self.isTransient = isTransient ?? kind.isTransientByDefault
        self.code = code
        self.requestID = requestID
        self.provider = provider
    }

    /// The longest `Retry-After` taken from a provider (24 hours); longer hints, including absurd ones such as
    /// `retry-after: 1e30`, are clamped to it. How long a provider is actually skipped is the chain's decision.
    public static let longestRetryAfter: Duration = .seconds(86_400)

    public var description: String {
        var text = provider.map { "\($0): " } ?? ""
        text += kind.description
        if let status { text += " (\(status))" }
        if let retryAfter { text += ", retry after \(formatDuration(retryAfter))" }
        if !isTransient && (kind == .rateLimited || kind == .overloaded) { text += ", not transient" }
        if !message.isEmpty { text += ": \(message)" }
        if let requestID { text += " [request \(requestID)]" }
        return text
    }
}

extension ProviderError.Kind {
    var isTransientByDefault: Bool {
        switch base {
        case .rateLimited, .overloaded, .serverError, .timeout, .connection: return true
        default: return false
        }
    }
}

/// Every provider the chain tried failed.
///
/// ``failures`` lists each provider's last error in the order tried; ``trace`` lists every attempt.
public struct AllProvidersFailed: Error, Sendable, CustomStringConvertible {
    /// The last error of each provider tried, in order.
    public var failures: [ProviderError]
    /// Every attempt made, in order.
    public var trace: [AttemptRecord]
    /// Whether the request's overall deadline ran out before every provider could be tried.
    public var deadlineExceeded: Bool
    /// Providers skipped without an attempt (open breaker, Retry-After).
    public var skipped: [SkippedProvider]

    /// Creates the error.
    public init(failures: [ProviderError], trace: [AttemptRecord] = [], deadlineExceeded: Bool = false, skipped: [SkippedProvider] = []) {
        self.failures = failures
        self.trace = trace
        self.deadlineExceeded = deadlineExceeded
        self.skipped = skipped
    }

    /// Whether every provider was skipped because its breaker was open.
    public var allCircuitsOpen: Bool {
        failures.isEmpty && !skipped.isEmpty && skipped.allSatisfy { $0.reason == .circuitOpen }
    }

    /// Whether every failure was a rate limit (a gateway answers 429).
    public var allRateLimited: Bool {
        let skippedForRetryAfter = skipped.filter { $0.reason == .retryAfter }
        guard !failures.isEmpty || !skippedForRetryAfter.isEmpty else { return false }
        return failures.allSatisfy { $0.kind == .rateLimited } && skippedForRetryAfter.count == skipped.count
    }

    /// The shortest `Retry-After` any provider asked for (or still has pending).
    public var shortestRetryAfter: Duration? {
        (failures.compactMap(\.retryAfter) + skipped.filter { $0.reason == .retryAfter }.map(\.availableIn)).min()
    }

    public var description: String {
        if failures.isEmpty {
            if !skipped.isEmpty { return "all providers failed: " + skipped.map(\.description).joined(separator: "; ") }
            return deadlineExceeded ? "all providers failed: deadline exceeded before any attempt" : "all providers failed: no provider to try"
        }
        let parts = failures.map { failure -> String in
            var text = failure.provider.map { "\($0): " } ?? ""
            text += failure.kind.description
            if let status = failure.status { text += " (\(status))" }
            if let retryAfter = failure.retryAfter { text += ", retry after \(formatDuration(retryAfter))" }
            if !failure.message.isEmpty { text += " - \(failure.message.prefix(200))" }
            return text
        }
        let skippedText = skipped.map { "; \($0)" }.joined()
        return "all providers failed: " + parts.joined(separator: "; ") + skippedText + (deadlineExceeded ? " (deadline exceeded)" : "")
    }
}

/// A duration for people (`250ms`, `1.5s`, `3600s`); total for any value.
func formatDuration(_ duration: Duration) -> String {
    let ms = duration.milliseconds
    guard ms.magnitude < 1e15 else { return String(format: "%.3gs", ms / 1000) }
    if ms.magnitude >= 1000 {
        let seconds = ms / 1000
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }
    return ms == ms.rounded() ? "\(Int(ms))ms" : String(format: "%.1fms", ms)
}
