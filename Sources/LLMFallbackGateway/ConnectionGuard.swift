import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// What one connection's guard knows, and what it decides: the client's request read deadlines, and the lingering
/// close after an answer sent before its request's body was read.
///
/// A value type fed events (bytes read, request parts read, response parts written, the timer firing) that returns
/// what to do; ``ConnectionGuardHandler`` carries it out on the channel. Tested without sockets.
///
/// - The head of a request must arrive within ``Timeouts/header`` of its first byte, and its body within
///   ``Timeouts/body`` of the head: totals, so a client trickling a byte at a time cannot hold the connection (or
///   the request's place under the gateway's limits). The time a request waits behind an earlier one being answered
///   (HTTP pipelining) does not count.
/// - An answer written while its request's body is still arriving (a `413`, a `401`, a `503`) gets
///   `Connection: close`; from then on the rest of the body is dropped as it arrives (the handler keeps reading,
///   whoever else stopped), once the answer is written the output side is closed, and the connection is closed
///   when the body ends, the client closes, or ``Timeouts/linger`` passes. Only then is the
///   connection closed, so a client that sends its whole body before reading gets the answer rather than a reset.
struct ConnectionGuardState {
    /// The deadlines the guard enforces.
    struct Timeouts {
        var header: TimeAmount
        var body: TimeAmount
        var linger: TimeAmount

        /// The timer's longest sleep: the shortest timeout, so a timer set earlier never fires after a deadline
        /// set later, and no timer is ever cancelled on the request path.
        var tick: TimeAmount { min(header, body, linger) }
    }

    /// Why the connection is closed.
    enum Closure: Equatable {
        case headerTimeout, bodyTimeout, lingerEnded
    }

    private enum Inbound {
        /// No request is being read.
        case betweenRequests
        /// The first bytes of a head arrived; the head is not complete.
        case head
        /// The head was read; the body's end was not.
        case body
    }

    let timeouts: Timeouts
    private var inbound = Inbound.betweenRequests
    /// Requests whose head was read and whose answer's end was not written yet.
    private var pendingResponses = 0
    /// Bytes arrived between requests while an answer was still pending (a pipelined head): its time starts when
    /// that answer ends.
    private var bytesWhileBusy = false
    private(set) var isLingering = false
    /// The deadline in force, if any.
    private(set) var deadline: NIODeadline?
    private var deadlineReason = Closure.headerTimeout

    init(timeouts: Timeouts) {
        self.timeouts = timeouts
    }

    /// Raw bytes arrived from the client.
    ///
    /// - Returns: Whether a deadline was set (the caller makes sure a timer runs).
    mutating func bytesRead(now: NIODeadline) -> Bool {
        guard inbound == .betweenRequests, !isLingering else { return false }
        if pendingResponses > 0 {
            bytesWhileBusy = true
            return false
        }
        inbound = .head
        setDeadline(now + timeouts.header, .headerTimeout)
        return true
    }

    /// A request head was decoded.
    mutating func headRead(now: NIODeadline) -> Bool {
        inbound = .body
        pendingResponses += 1
        bytesWhileBusy = false
        guard !isLingering else { return false }
        if pendingResponses == 1 {
            setDeadline(now + timeouts.body, .bodyTimeout)
            return true
        }
        // Behind an answer still being written: its time starts when that answer ends.
        deadline = nil
        return false
    }

    /// A request's end was decoded.
    ///
    /// - Returns: Whether to close the connection now (the rest of a refused body has been read).
    mutating func endRead() -> Bool {
        inbound = .betweenRequests
        if isLingering { return true }
        deadline = nil
        return false
    }

    /// An answer's head is about to be written.
    ///
    /// - Returns: Whether the answer must say `Connection: close` (its request's body is still arriving).
    mutating func responseHeadWritten() -> Bool {
        if pendingResponses == 1 && inbound == .body && !isLingering {
            isLingering = true
            deadline = nil
        }
        return isLingering
    }

    /// An answer's end is about to be written.
    ///
    /// - Returns: Whether to close the output side once it is written and linger.
    mutating func responseEndWritten(now: NIODeadline) -> (lingering: Bool, armed: Bool) {
        pendingResponses = max(0, pendingResponses - 1)
        if isLingering {
            setDeadline(now + timeouts.linger, .lingerEnded)
            return (true, true)
        }
        if pendingResponses == 1 && inbound == .body {
            setDeadline(now + timeouts.body, .bodyTimeout)
            return (false, true)
        }
        if pendingResponses == 0 && inbound == .betweenRequests && bytesWhileBusy {
            bytesWhileBusy = false
            inbound = .head
            setDeadline(now + timeouts.header, .headerTimeout)
            return (false, true)
        }
        return (false, false)
    }

    /// What the timer firing at `now` means.
    enum TimerAction: Equatable {
        /// Nothing is timed: let the timer go.
        case stop
        /// Sleep again, until this instant.
        case sleep(until: NIODeadline)
        /// Close the connection.
        case close(Closure)
    }

    /// The timer fired.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        guard let deadline else { return .stop }
        if now >= deadline {
            self.deadline = nil
            return .close(deadlineReason)
        }
        return .sleep(until: min(deadline, now + timeouts.tick))
    }

    private mutating func setDeadline(_ deadline: NIODeadline, _ reason: Closure) {
        self.deadline = deadline
        self.deadlineReason = reason
    }
}

/// Enforces ``ConnectionGuardState`` on a connection, and reports the client leaving to its ``ConnectionWatch``.
///
/// Sits after the HTTP codec (it sees request and response parts); on being added it puts a
/// ``RequestStartHandler`` at the front of the pipeline, which tells it when raw bytes arrive (a head's first bytes
/// are seen nowhere else).
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let registry: ConnectionRegistry
    private var watch: ConnectionWatch?
    private var state: ConnectionGuardState
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var closed = false

    init(registry: ConnectionRegistry, timeouts: ConnectionGuardState.Timeouts) {
        self.registry = registry
        self.state = ConnectionGuardState(timeouts: timeouts)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        watch = registry.register(context.channel)
        try? context.pipeline.syncOperations.addHandler(RequestStartHandler(guard: self), position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context.channel)
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    /// Raw bytes arrived (from ``RequestStartHandler``).
    func bytesArrived() {
        guard let context, state.bytesRead(now: .now()) else { return }
        ensureTimer(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            if state.headRead(now: .now()) { ensureTimer(context) }
        case .body:
            if state.isLingering {
                // The rest of a refused body: dropped here. The request handler has answered and nobody reads it
                // (Hummingbird's own drain stalls once its buffer is full), so this handler keeps the reads going.
                return
            }
        case .end:
            if state.endRead() {
                // The rest of a refused body arrived: nothing unread is left to provoke a reset.
                context.fireChannelRead(data)
                close(context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            if state.responseHeadWritten() {
                head.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(head)), promise: promise)
                return
            }
        case .body:
            break
        case .end:
            let (lingering, armed) = state.responseEndWritten(now: .now())
            if armed { ensureTimer(context) }
            if lingering {
                let written = promise ?? context.eventLoop.makePromise()
                context.write(data, promise: written)
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                written.futureResult.whenComplete { _ in
                    let (handler, context) = loopBound.value
                    handler.closeOutput(context)
                }
                return
            }
        }
        context.write(data, promise: promise)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state.isLingering && !closed { context.read() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context.channel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            watch?.clientWentAway()
            if state.isLingering { close(context) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Timer

    private func ensureTimer(_ context: ChannelHandlerContext) {
        guard timer == nil, let deadline = state.deadline else { return }
        schedule(context, at: min(deadline, .now() + state.timeouts.tick))
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let context = self.context else { return }
            switch state.timerFired(now: .now()) {
            case .stop:
                break
            case .sleep(let until):
                schedule(context, at: until)
            case .close:
                close(context)
            }
        }
    }

    // MARK: - Closing

    private func closeOutput(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.close(mode: .output).whenFailure { _ in
            let (handler, context) = loopBound.value
            handler.close(context)
        }
        // Read on (and discard) whatever the client still sends, whether or not anyone above asks for it.
        context.read()
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        context.close(promise: nil)
    }

    private func finish(_ channel: any Channel) {
        guard let watch else { return }
        self.watch = nil
        watch.clientWentAway()
        registry.unregister(channel)
    }
}

/// The front of a connection's pipeline: tells its ``ConnectionGuardHandler`` when bytes arrive, and passes them on.
final class RequestStartHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private weak var owner: ConnectionGuardHandler?

    init(guard owner: ConnectionGuardHandler) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.bytesArrived()
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ConnectionGuardHandler: Sendable {}

@available(*, unavailable)
extension RequestStartHandler: Sendable {}
