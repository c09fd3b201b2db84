import Foundation
import HTTPTypes
import LLMFallback
import NIOCore

/// An error the gateway answers with, in OpenAI's format:
/// `{"error":{"message":...,"type":...,"param":...,"code":...}}`.
struct GatewayError: Error, Sendable {
    /// The HTTP status.
    var status: Int
    /// What went wrong, for a person.
    var message: String
    /// OpenAI's error `type`, such as `invalid_request_error`.
    var type: String
    /// The request parameter at fault, if any.
    var param: String?
    /// A machine-readable code, such as `model_not_found`.
    var code: String?
    /// Seconds for a `Retry-After` header.
    var retryAfterSeconds: Int?

    init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfterSeconds = retryAfterSeconds
    }

    // MARK: - Client errors

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> GatewayError {
        GatewayError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func modelNotFound(_ model: String, available: [String]) -> GatewayError {
        GatewayError(
            status: 404,
            message: "The model '\(model)' does not exist: the gateway serves the chains \(available.map { "'\($0)'" }.joined(separator: ", "))",
            type: "invalid_request_error",
            param: "model",
            code: "model_not_found"
        )
    }

    static func bodyTooLarge(limit: Int) -> GatewayError {
        GatewayError(
            status: 413,
            message: "the request body is larger than the gateway's limit of \(limit) bytes",
            type: "invalid_request_error",
            code: "request_too_large"
        )
    }

    static let missingKey = GatewayError(
        status: 401,
        message: "You didn't provide an API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
        type: "invalid_request_error",
        code: "missing_api_key"
    )

    static let invalidKey = GatewayError(
        status: 401,
        message: "Incorrect API key provided",
        type: "invalid_request_error",
        code: "invalid_api_key"
    )

    static func notFound(method: HTTPRequest.Method, path: String) -> GatewayError {
        GatewayError(status: 404, message: "Unknown request URL: \(method.rawValue) \(path)", type: "invalid_request_error", code: "unknown_url")
    }

    static func methodNotAllowed(method: HTTPRequest.Method, path: String) -> GatewayError {
        GatewayError(status: 405, message: "Method \(method.rawValue) is not allowed on \(path)", type: "invalid_request_error", code: "method_not_allowed")
    }

    // MARK: - What the chain threw

    /// Maps what a chain threw to the status and message the client gets.
    ///
    /// | error | status |
    /// | --- | --- |
    /// | ``ProviderError`` of a client class (invalid request, context length, content filter) | 400, the provider's reason |
    /// | ``AllProvidersFailed`` whose every failure is of a client class | 400, the first provider's reason |
    /// | ``AllProvidersFailed`` where every provider was rate limited | 429 with `Retry-After` |
    /// | ``AllProvidersFailed`` where every breaker was open when the request came (the chain may still have forced
    /// one probe, which failed) | 503 with `Retry-After` |
    /// | any other ``AllProvidersFailed`` | 502, with the attempt trace |
    /// | another ``ProviderError`` the policy stopped on | 429 (rate limited), 504 (timeout), else 502 |
    /// | `CancellationError` (the client went away, or shutdown) | 499 |
    ///
    /// Unless `detailed`, a message names only providers, error classes, HTTP statuses and waits: what an upstream
    /// said (its error text, which may quote a prompt or name an internal host, and its request id) is left out.
    /// A client-class refusal keeps the provider's reason, which is about the client's own request.
    ///
    /// - Parameters:
    ///   - error: What the chain threw.
    ///   - redactor: Removes provider keys from the message.
    ///   - providerCount: The number of providers in the chain (to tell when every breaker was open).
    ///   - detailed: Whether to include what the upstreams said (for logs, or with
    ///     ``GatewayConfiguration/exposeUpstreamErrors``).
    static func from(_ error: any Error, redactor: Redactor, providerCount: Int = 0, detailed: Bool = false) -> GatewayError {
        switch error {
        case let failed as AllProvidersFailed:
            return from(failed, redactor: redactor, providerCount: providerCount, detailed: detailed)
        case let failure as ProviderError:
            return from(failure, redactor: redactor, detailed: detailed)
        case let interrupted as StreamInterrupted:
            let message = detailed
                ? "\(interrupted)"
                : "stream from \(interrupted.provider) interrupted after \(interrupted.deliveredChunks) chunks: "
                    + summary(of: interrupted.underlying) + (interrupted.continuationFailure.map { "; \($0)" } ?? "")
            return GatewayError(
                status: 502,
                message: redactor.redact(message),
                type: "upstream_error",
                code: "stream_interrupted"
            )
        case is CancellationError:
            return GatewayError(status: 499, message: "the request was cancelled", type: "cancelled", code: "cancelled")
        default:
            return GatewayError(
                status: 500,
                message: detailed ? redactor.redact("internal error: \(error)") : "internal error",
                type: "server_error"
            )
        }
    }

    static func from(_ failure: ProviderError, redactor: Redactor, detailed: Bool = false) -> GatewayError {
        let reason = redactor.redact(failure.provider.map { "\($0): \(failure.message)" } ?? failure.message)
        switch failure.kind {
        case .contextLengthExceeded:
            return GatewayError(status: 400, message: reason, type: "invalid_request_error", code: "context_length_exceeded")
        case .contentFiltered:
            return GatewayError(status: 400, message: reason, type: "invalid_request_error", code: "content_filter")
        case .invalidRequest:
            return GatewayError(status: 400, message: reason, type: "invalid_request_error", code: failure.code.map(redactor.redact))
        default:
            break
        }
        let message = redactor.redact(detailed ? detail(of: failure) : summary(of: failure))
        switch failure.kind {
        case .rateLimited:
            return GatewayError(
                status: 429,
                message: message,
                type: "rate_limit_error",
                code: "rate_limit_exceeded",
                retryAfterSeconds: seconds(failure.retryAfter)
            )
        case .timeout:
            return GatewayError(status: 504, message: message, type: "timeout_error", code: "upstream_timeout")
        default:
            return GatewayError(status: 502, message: message, type: "upstream_error", code: failure.kind.label)
        }
    }

    static func from(_ failed: AllProvidersFailed, redactor: Redactor, providerCount: Int, detailed: Bool = false) -> GatewayError {
        if !failed.failures.isEmpty, failed.failures.allSatisfy(\.kind.isClientError), let first = failed.failures.first {
            return from(first, redactor: redactor, detailed: detailed)
        }
        let message = redactor.redact(traceMessage(failed, detailed: detailed))
        if failed.allRateLimited {
            return GatewayError(
                status: 429,
                message: message,
                type: "rate_limit_error",
                code: "rate_limit_exceeded",
                retryAfterSeconds: seconds(failed.shortestRetryAfter)
            )
        }
        let openAtStart = Set(failed.skipped.lazy.filter { $0.reason == .circuitOpen }.map(\.provider))
        if failed.allCircuitsOpen || (providerCount > 0 && openAtStart.count >= providerCount) {
            return GatewayError(
                status: 503,
                message: message,
                type: "service_unavailable_error",
                code: "all_circuits_open",
                retryAfterSeconds: seconds(failed.skipped.map(\.availableIn).min())
            )
        }
        return GatewayError(status: 502, message: message, type: "upstream_error", code: "all_providers_failed")
    }

    /// The failures, the skipped providers and every attempt: `all providers failed: primary: server_error (HTTP
    /// 500); backup: skipped, circuit open for 12s | attempts: primary #1: server_error (HTTP 500)`.
    ///
    /// Written here from the error's fields rather than taken from its description, so that only what the
    /// gateway chooses to show is shown: with `detailed`, each failure's upstream message and request id too.
    static func traceMessage(_ failed: AllProvidersFailed, detailed: Bool = false) -> String {
        var parts = failed.failures.map { detailed ? detail(of: $0, limit: 200) : summary(of: $0) }
        for skipped in failed.skipped {
            switch skipped.reason {
            case .circuitOpen: parts.append("\(skipped.provider): skipped, circuit open for \(format(skipped.availableIn))")
            case .retryAfter: parts.append("\(skipped.provider): skipped, retry after \(format(skipped.availableIn))")
            case .cannotContinue: parts.append("\(skipped.provider): skipped, cannot continue a partial answer")
            }
        }
        var message = "all providers failed"
        if parts.isEmpty {
            message += failed.deadlineExceeded ? ": deadline exceeded before any attempt" : ": no provider to try"
        } else {
            message += ": " + parts.joined(separator: "; ")
            if failed.deadlineExceeded { message += " (deadline exceeded)" }
        }
        if !failed.trace.isEmpty {
            message += " | attempts: " + failed.trace.map(summary(of:)).joined(separator: ", ")
        }
        return message
    }

    /// `primary: server_error (HTTP 500), retry after 2s`: the provider, the class, the status and the wait.
    static func summary(of failure: ProviderError) -> String {
        var text = failure.provider.map { "\($0): " } ?? ""
        text += failure.kind.label
        if let status = failure.status { text += " (HTTP \(status))" }
        if let retryAfter = failure.retryAfter { text += ", retry after \(format(retryAfter))" }
        return text
    }

    /// ``summary(of:)-(ProviderError)`` with the upstream's message (its first `limit` characters) and request id.
    static func detail(of failure: ProviderError, limit: Int = 500) -> String {
        var text = summary(of: failure)
        if !failure.message.isEmpty { text += ": \(failure.message.prefix(limit))" }
        if let requestID = failure.requestID { text += " [request \(requestID.prefix(100))]" }
        return text
    }

    /// `primary #1: server_error (HTTP 500)`.
    static func summary(of attempt: AttemptRecord) -> String {
        var text = "\(attempt.provider) #\(attempt.number): "
        switch attempt.outcome {
        case .success: text += "ok"
        case .cancelled: text += "cancelled"
        case .failure(let kind): text += kind.label
        }
        if let status = attempt.status { text += " (HTTP \(status))" }
        return text
    }

    /// A wait in whole seconds (rounded up) or milliseconds under a second; never traps, however long.
    static func format(_ duration: Duration) -> String {
        if duration <= .zero { return "0ms" }
        if duration < .seconds(1) {
            return "\(max(1, duration.components.attoseconds / 1_000_000_000_000_000))ms"
        }
        return "\(Self.seconds(duration))s"
    }

    /// The longest `Retry-After` the gateway sends: a day.
    static let longestRetryAfter = 86_400

    /// Whole seconds, rounded up, between 1 and ``longestRetryAfter``; never traps, however long or negative.
    static func seconds(_ duration: Duration?) -> Int {
        guard let duration else { return 1 }
        // Compared before `components`, which traps past Int64.max seconds.
        guard duration < .seconds(longestRetryAfter) else { return longestRetryAfter }
        guard duration > .zero else { return 1 }
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }

    // MARK: - Encoding

    /// The error body, `{"error":{...}}`.
    func body(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 96 + message.utf8.count)
        writeObject(into: &buffer)
        return buffer
    }

    /// Writes `{"error":{"message":...,"type":...,"param":...,"code":...}}`.
    func writeObject(into buffer: inout ByteBuffer) {
        OpenAIChatServer.writeError(message: message, type: type, param: param, code: code, into: &buffer)
    }
}

/// Removes the chains' provider keys from any text the gateway sends or logs.
///
/// The library already redacts the key an error came with; this is the gateway's second line: every key any chain
/// holds (given, or read from the environment), wherever it appears.
struct Redactor: Sendable {
    let secrets: [String]

    init(chains: some Sequence<FallbackChain>) {
        var secrets = Set<String>()
        let environment = ProcessInfo.processInfo.environment
        for chain in chains {
            for provider in chain.providers {
                if let key = provider.apiKey { secrets.insert(key) }
                if let key = try? provider.resolved(environment: environment).apiKey { secrets.insert(key) }
            }
        }
        // Longest first, so a key that contains another is removed whole.
        self.secrets = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    func redact(_ text: String) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return text
    }
}

extension Redactor: CustomStringConvertible, CustomReflectable {
    /// The number of secrets, never the secrets.
    var description: String { "Redactor(\(secrets.count) secrets)" }

    var customMirror: Mirror { Mirror(self, children: ["secrets": "<\(secrets.count) redacted>"], displayStyle: .struct) }
}
