import NIOCore
import NIOHTTP1

/// One pooled HTTP/1.1 connection: the channel handler at the end of its pipeline, a thin shell around
/// ``HTTP1ConnectionStateMachine``. It feeds the machine the channel's events and carries out the actions it
/// returns: writing the request, handing over the response, pausing reads, timers, going back to the pool.
///
/// Everything but `key`, `eventLoop` and `channel` is confined to the connection's event loop.
final class HTTP1Connection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// How long a response whose reader went away may take to finish before the connection is closed instead of
    /// reused.
    static let drainTimeout: TimeAmount = .seconds(2)

    let key: ConnectionKey
    let eventLoop: any EventLoop
    private(set) var channel: (any Channel)?
    private let pool: HTTPConnectionPool
    private var context: ChannelHandlerContext?
    private var machine: HTTP1ConnectionStateMachine
    /// The request running, until its response is handed over (or it fails).
    private var request: RequestExecution?
    /// The body streaming, until it ends.
    private var body: StreamedResponseBody?
    /// Set once the pool counts this connection (the connect succeeded).
    private var adopted = false
    private var idleTimer: Scheduled<Void>?
    private var drainTimer: Scheduled<Void>?

    init(pool: HTTPConnectionPool, key: ConnectionKey, eventLoop: any EventLoop) {
        self.pool = pool
        self.key = key
        self.eventLoop = eventLoop
        self.machine = HTTP1ConnectionStateMachine(
            key: key,
            idleTimeout: .nanoseconds(pool.configuration.idleTimeout.clampedNanoseconds)
        )
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The connect succeeded and the pool counts the connection. On the event loop.
    func adopt() {
        adopted = true
        run(machine.adopted(now: .now()))
    }

    // MARK: Requests

    func execute(_ request: RequestExecution) {
        let action = machine.runRequest(
            method: request.head.method,
            closeAfter: request.closeAfter,
            isChannelActive: context?.channel.isActive ?? false
        )
        switch action {
        case .sendRequest:
            guard let context else { return }
            self.request = request
            request.armTimer(on: eventLoop)
            context.write(wrapOutboundOut(.head(request.head)), promise: nil)
            if let body = request.body, body.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .failRequest(let error, let written):
            request.fail(error, retryable: !written)
            if machine.isClosed { context?.close(promise: nil) }
        default:
            run(action)
        }
    }

    /// The request was cancelled or timed out before its response was handed over: the connection is closed.
    func abort(_ request: RequestExecution) {
        guard request === self.request else { return }
        self.request = nil
        run(machine.requestCancelled())
    }

    /// The body's reader was cancelled: the connection is closed.
    func abortBody(_ body: StreamedResponseBody) {
        guard body === self.body else { return }
        self.body = nil
        run(machine.bodyCancelled())
    }

    /// The body's reader went away before the end: read the rest and drop it, then reuse the connection, unless it
    /// takes longer than ``drainTimeout``.
    func bodyAbandoned(_ body: StreamedResponseBody) {
        guard body === self.body else { return }
        self.body = nil
        run(machine.bodyAbandoned())
    }

    /// The body's reader caught up: reading resumes.
    func bodyDrained(_ body: StreamedResponseBody) {
        guard body === self.body else { return }
        run(machine.bodyReaderCaughtUp())
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        run(machine.channelRead(unwrapInboundIn(data), now: .now()))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        run(machine.channelReadComplete())
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        run(machine.read())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(machine.errorCaught(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        drainTimer?.cancel()
        drainTimer = nil
        run(machine.channelInactive())
        request = nil
        body = nil
        if adopted {
            adopted = false
            pool.connectionClosed(key, self)
        }
        context.fireChannelInactive()
    }

    // MARK: Actions

    private func run(_ action: HTTP1ConnectionStateMachine.Action) {
        switch action {
        case .wait:
            break
        case .read:
            context?.read()
        case .sendRequest:
            // Only `execute` runs a request.
            break
        case .failRequest(let error, _):
            // Written: never retried.
            let request = self.request
            self.request = nil
            request?.fail(error, retryable: false)
        case .failRequestAndClose(let error):
            let request = self.request
            self.request = nil
            request?.fail(error, retryable: false)
            closeChannel()
        case .forwardResponse(let head, let buffer, let final):
            let request = self.request
            self.request = nil
            // Back to the pool first, so the caller's next request finds the connection there. Should the
            // request have ended meanwhile, the complete response leaves the connection reusable all the same.
            finish(final)
            let response = TransportResponse(
                status: Int(head.status.code),
                headers: head.headers,
                body: ResponseBody(buffer ?? ByteBuffer())
            )
            _ = request?.succeed(response)
        case .startStreaming(let head, let initial):
            let request = self.request
            self.request = nil
            let body = StreamedResponseBody(connection: self, initial: initial, highWater: pool.configuration.maximumBufferedBodyBytes)
            self.body = body
            let response = TransportResponse(status: Int(head.status.code), headers: head.headers, body: ResponseBody(streaming: body))
            if request?.succeed(response, streaming: body) != true {
                self.body = nil
                run(machine.bodyCancelled())
            }
        case .forwardBodyPart(let part):
            if let body, body.push(part) {
                machine.bodyReaderIsBehind()
            }
        case .finishBody(let final):
            let body = self.body
            self.body = nil
            // Complete before the connection goes back (where the next request may take it): a timeout firing
            // meanwhile on another loop leaves this body whole.
            body?.willFinish()
            finish(final)
            body?.finish()
        case .failBody(let error):
            let body = self.body
            self.body = nil
            body?.finish(throwing: error)
        case .failBodyAndClose(let error):
            let body = self.body
            self.body = nil
            body?.finish(throwing: error)
            closeChannel()
        case .startDraining(let read):
            drainTimer = eventLoop.scheduleTask(in: Self.drainTimeout) { [self] in
                drainTimer = nil
                run(machine.drainTimeoutFired())
            }
            if read { context?.read() }
        case .finishDraining(let final):
            drainTimer?.cancel()
            drainTimer = nil
            finish(final)
        case .close:
            closeChannel()
        case .armIdleTimer(let deadline):
            armIdleTimer(at: deadline)
        case .closeIfIdleInPool:
            if pool.removeIdle(self) {
                run(machine.closeIdle())
            } else {
                run(machine.idleTimerFoundConnectionLeased(now: .now()))
            }
        }
    }

    private func finish(_ final: HTTP1ConnectionStateMachine.FinalAction) {
        switch final {
        case .close:
            closeChannel()
        case .release(let read, let deadline):
            if let deadline { armIdleTimer(at: deadline) }
            if read { context?.read() }
            pool.release(self)
        }
    }

    private func closeChannel() {
        drainTimer?.cancel()
        drainTimer = nil
        context?.close(promise: nil)
    }

    private func armIdleTimer(at deadline: NIODeadline) {
        idleTimer?.cancel()
        idleTimer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            idleTimer = nil
            run(machine.idleTimerFired(now: .now()))
        }
    }
}
