import NIOCore
import NIOHTTP1

/// One pooled HTTP/1.1 connection: the channel handler at the end of its pipeline, which writes a request and
/// turns the decoded response into the caller's ``TransportResponse``.
///
/// Everything but `key`, `eventLoop` and `channel` is confined to the connection's event loop.
final class HTTP1Connection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// How long a response whose reader went away may take to finish before the connection is closed instead of
    /// reused.
    static let drainTimeout: TimeAmount = .seconds(2)

    private enum State {
        case idle
        case awaitingHead(RequestExecution)
        /// The head is in, not yet handed over: the rest of the read may complete the body.
        case headReceived(RequestExecution, HTTPResponseHead, ByteBuffer?)
        case streaming(StreamedResponseBody, keepAlive: Bool)
        /// The reader went away before the end: the rest is read and dropped, then the connection is reused.
        case draining(keepAlive: Bool, Scheduled<Void>)
        case closed
    }

    let key: ConnectionKey
    let eventLoop: any EventLoop
    private(set) var channel: (any Channel)?
    private let pool: HTTPConnectionPool
    private var context: ChannelHandlerContext?
    private var state = State.idle
    private var isActive = true
    /// Set once the pool counts this connection (the connect succeeded).
    private var adopted = false
    private var completedResponses = 0
    private var closeCause: (any Error)?
    private var readPaused = false
    private var readPending = false
    private var idleSince = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?

    init(pool: HTTPConnectionPool, key: ConnectionKey, eventLoop: any EventLoop) {
        self.pool = pool
        self.key = key
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The connect succeeded and the pool counts the connection.
    func adopt() {
        adopted = true
    }

    // MARK: Requests

    func execute(_ request: RequestExecution) {
        guard case .idle = state, isActive, let context else {
            // Closed while idle in the pool, before the close was seen there.
            request.fail(ProviderError.transport(.connection, key, "connection closed"), retryable: completedResponses > 0)
            return
        }
        state = .awaitingHead(request)
        request.armTimer(on: eventLoop)
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The request was cancelled or timed out before its head was handed over: the connection is closed.
    func abort(_ request: RequestExecution) {
        switch state {
        case .awaitingHead(let current) where current === request, .headReceived(let current, _, _) where current === request:
            close(cause: CancellationError())
        default:
            break
        }
    }

    /// The body's reader was cancelled: the connection is closed.
    func abortBody(_ body: StreamedResponseBody) {
        guard case .streaming(let current, _) = state, current === body else { return }
        close(cause: CancellationError())
    }

    /// The body's reader went away before the end: read the rest and drop it, then reuse the connection, unless it
    /// takes longer than ``drainTimeout``.
    func bodyAbandoned(_ body: StreamedResponseBody) {
        guard case .streaming(let current, let keepAlive) = state, current === body else { return }
        let timer = eventLoop.scheduleTask(in: Self.drainTimeout) { [self] in
            if case .draining = state { close(cause: nil) }
        }
        state = .draining(keepAlive: keepAlive, timer)
        resumeReading()
    }

    /// The body's reader caught up: reading resumes.
    func bodyDrained(_ body: StreamedResponseBody) {
        guard case .streaming(let current, _) = state, current === body else { return }
        resumeReading()
    }

    private func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    private func close(cause: (any Error)?) {
        if closeCause == nil { closeCause = cause }
        if case .streaming(let body, _) = state {
            body.finish(throwing: cause ?? ProviderError.transport(.connection, key, "connection closed before the response completed"))
        }
        state = .closed
        context?.close(promise: nil)
    }

    // MARK: Response

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead(let request) = state else {
                close(cause: ProviderError.transport(.invalidResponse, key, "unexpected response"))
                return
            }
            state = .headReceived(request, head, nil)
        case .body(var part):
            switch state {
            case .headReceived(let request, let head, var pending):
                state = .idle
                if pending == nil {
                    pending = part
                } else {
                    pending!.writeBuffer(&part)
                }
                state = .headReceived(request, head, pending)
            case .streaming(let body, _):
                if body.push(part) { readPaused = true }
            case .draining:
                break
            case .idle, .awaitingHead, .closed:
                break
            }
        case .end:
            switch state {
            case .headReceived(let request, let head, let pending):
                // Back to the pool first, so the caller's next request finds the connection there. Should the
                // request have ended meanwhile, the complete response leaves the connection reusable all the same.
                state = .idle
                complete(keepAlive: head.isKeepAlive)
                let response = TransportResponse(status: Int(head.status.code), headers: head.headers, body: ResponseBody(pending ?? ByteBuffer()))
                _ = request.succeed(response)
            case .streaming(let body, let keepAlive):
                state = .idle
                complete(keepAlive: keepAlive)
                body.finish()
            case .draining(let keepAlive, let timer):
                timer.cancel()
                state = .idle
                complete(keepAlive: keepAlive)
            case .idle, .awaitingHead, .closed:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .headReceived(let request, let head, let pending) = state {
            // The body goes on past this read: hand over the head and stream the rest.
            let body = StreamedResponseBody(connection: self, initial: pending, highWater: pool.configuration.maximumBufferedBodyBytes)
            state = .streaming(body, keepAlive: head.isKeepAlive)
            let response = TransportResponse(status: Int(head.status.code), headers: head.headers, body: ResponseBody(streaming: body))
            if !request.succeed(response) {
                close(cause: CancellationError())
            }
        }
        context.fireChannelReadComplete()
    }

    /// The response is complete: back to the pool, unless the server wants the connection closed.
    private func complete(keepAlive: Bool) {
        completedResponses += 1
        guard keepAlive, isActive else {
            close(cause: nil)
            return
        }
        markIdle()
        pool.release(self)
    }

    // MARK: Idle

    /// Starts the idle clock, and the idle timer if it is not running.
    func markIdle() {
        idleSince = .now()
        if idleTimer == nil {
            armIdleTimer(at: idleSince + .nanoseconds(pool.configuration.idleTimeout.clampedNanoseconds))
        }
    }

    private func armIdleTimer(at deadline: NIODeadline) {
        idleTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            idleTimer = nil
            guard case .idle = state, isActive else { return }  // busy: re-armed when idle again
            let due = idleSince + .nanoseconds(pool.configuration.idleTimeout.clampedNanoseconds)
            if due > .now() {
                armIdleTimer(at: due)
            } else if pool.removeIdle(self) {
                close(cause: nil)
            }
        }
    }

    // MARK: Reads, errors and close

    func read(context: ChannelHandlerContext) {
        if readPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeCause == nil { closeCause = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        idleTimer?.cancel()
        idleTimer = nil
        let cause = closeCause
        let previous = state
        state = .closed
        switch previous {
        case .awaitingHead(let request):
            request.fail(
                Self.connectionError(cause, key, "connection closed before the response"),
                retryable: completedResponses > 0 && Self.isRetryable(cause)
            )
        case .headReceived(let request, _, _):
            request.fail(Self.connectionError(cause, key, "connection closed before the response completed"), retryable: false)
        case .streaming(let body, _):
            body.finish(throwing: Self.connectionError(cause, key, "connection closed before the response completed"))
        case .draining(_, let timer):
            timer.cancel()
        case .idle, .closed:
            break
        }
        if adopted {
            adopted = false
            pool.connectionClosed(key, self)
        }
        context.fireChannelInactive()
    }

    /// Whether a failure before any response byte may be a server closing an idle connection as it was reused.
    static func isRetryable(_ cause: (any Error)?) -> Bool {
        guard let cause else { return true }  // end of file
        return !(cause is HTTPParserError) && !(cause is NIOHTTPDecoderError) && !(cause is CancellationError) && !(cause is ProviderError)
    }

    static func connectionError(_ cause: (any Error)?, _ key: ConnectionKey, _ what: String) -> any Error {
        guard let cause else { return ProviderError.transport(.connection, key, what) }
        if cause is CancellationError || cause is ProviderError { return cause }
        return ProviderError.transport(.connection, key, "\(what): \(describeNetworkError(cause))")
    }
}
