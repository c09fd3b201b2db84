import NIOCore
import NIOHTTP1

/// The life of one pooled HTTP/1.1 connection as a value: events in, actions out, no I/O.
///
/// ``HTTP1Connection`` is the shell that feeds it the channel's events (reads, the request to run, the reader's
/// demand, timers, errors, the close) and carries out the action each returns. Every rule about reuse lives here,
/// where a unit test can reach it without a socket:
///
/// - A request is written only on an idle, open connection; any other is refused as *never written*, the only
///   failure that may be retried on another connection. A request whose bytes went out is never re-sent: once
///   written, a close or an error fails it.
/// - A connection goes back to the pool only after a complete response that leaves it reusable: keep-alive, framed
///   by a length or chunks (a body that ends because the connection closed is never followed by another request),
///   no protocol switch, and no `Connection: close` in the request.
/// - Reading pauses only while a streamed body's reader is behind; leaving the response (its end, the reader
///   going away, a close) drops the pause, and a read the pause held back is issued then. A connection back in
///   the pool is never left with reads paused.
/// - While the connection is idle and open an idle timer is armed, whoever returned it to the pool and from
///   whichever thread: the timer is armed on entering idle, re-armed when it finds the connection leased (the
///   lease may yet be given back), and only dropped when it finds a request running (which re-arms it on its
///   return to idle).
struct HTTP1ConnectionStateMachine {
    /// Whether the connection's reads are held back for a slow body reader.
    struct ReadDemand: Equatable {
        /// The reader is behind: the channel's reads are held back.
        var paused = false
        /// A read arrived while paused, to be issued once the pause ends.
        var pending = false
    }

    private enum State {
        /// Open and unused: in the pool, or leased and about to run a request.
        case idle
        /// A request is written; no response byte yet.
        case awaitingHead(close: Bool, isHEAD: Bool)
        /// The head is in and not yet handed over: the rest of this read may complete the body.
        case headReceived(HTTPResponseHead, ByteBuffer?, close: Bool)
        /// The head is handed over, the body streams to its reader.
        case streaming(close: Bool, ReadDemand)
        /// The reader went away before the end: the rest is read and dropped.
        case draining(close: Bool)
        /// Closing, with nothing left to deliver: what arrives now is dropped.
        case closing
        case closed
        /// Transient, while an associated buffer is modified in place (no copy on write).
        case modifying
    }

    /// What the connection does once a response ends.
    enum FinalAction: Equatable {
        /// Back to the pool. `read`: issue the read a pause held back. `armIdleTimerAt`: arm the idle timer.
        case release(read: Bool, armIdleTimerAt: NIODeadline?)
        /// Close the connection.
        case close
    }

    enum Action {
        /// Nothing to do.
        case wait
        /// Pass the read on to the channel.
        case read
        /// Write the request: head, body and end, in one flush.
        case sendRequest
        /// Fail the request. `written == false`: nothing of it went out, it may run on another connection.
        case failRequest(any Error, written: Bool)
        /// Fail the request, then close the connection.
        case failRequestAndClose(any Error)
        /// The whole response arrived in one read: hand it over, then do the final action.
        case forwardResponse(HTTPResponseHead, ByteBuffer?, FinalAction)
        /// The head arrived and the body goes on: hand over the head with a streamed body starting with these bytes.
        case startStreaming(HTTPResponseHead, ByteBuffer?)
        /// A part of a streamed body.
        case forwardBodyPart(ByteBuffer)
        /// The streamed body is complete: finish it, then do the final action.
        case finishBody(FinalAction)
        /// Fail the streamed body (the connection is gone).
        case failBody(any Error)
        /// Fail the streamed body, then close the connection.
        case failBodyAndClose(any Error)
        /// The reader went away: arm the drain timer; `read`: issue the read a pause held back.
        case startDraining(read: Bool)
        /// The abandoned body is complete: cancel the drain timer, then do the final action.
        case finishDraining(FinalAction)
        /// Close the connection (nothing is waiting for it).
        case close
        /// Arm the idle timer for this time.
        case armIdleTimer(NIODeadline)
        /// The idle timeout passed: take the connection out of the pool and close it, or report it leased
        /// (``idleTimerFoundConnectionLeased(now:)``).
        case closeIfIdleInPool
    }

    let key: ConnectionKey
    let idleTimeout: TimeAmount
    private var state = State.idle
    /// Whether the connect succeeded and the connection is the pool's (before, nothing arms the idle timer).
    private var adopted = false
    private var idleTimerArmed = false
    private var idleSince = NIODeadline.uptimeNanoseconds(0)
    /// The first error seen, the reason for the close.
    private var closeCause: (any Error)?

    init(key: ConnectionKey, idleTimeout: TimeAmount) {
        self.key = key
        self.idleTimeout = idleTimeout
    }

    /// Whether the connection is open and unused (for tests and assertions).
    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// Whether a request is running (written, its response not yet complete).
    var isInRequest: Bool {
        switch state {
        case .awaitingHead, .headReceived, .streaming, .draining: return true
        case .idle, .closing, .closed, .modifying: return false
        }
    }

    /// Whether the connection is closing or closed.
    var isClosed: Bool {
        switch state {
        case .closing, .closed: return true
        default: return false
        }
    }

    /// Whether reads are held back.
    var isReadPaused: Bool {
        if case .streaming(_, let demand) = state { return demand.paused }
        return false
    }

    /// Whether the idle timer is armed (for tests).
    var isIdleTimerArmed: Bool { idleTimerArmed }

    // MARK: Life

    /// The connect succeeded: the connection is the pool's, and idle.
    mutating func adopted(now: NIODeadline) -> Action {
        adopted = true
        guard case .idle = state else { return .wait }
        guard let deadline = enterIdle(now: now).armIdleTimerAt else { return .wait }
        return .armIdleTimer(deadline)
    }

    private mutating func enterIdle(now: NIODeadline) -> (read: Bool, armIdleTimerAt: NIODeadline?) {
        state = .idle
        idleSince = now
        guard adopted, !idleTimerArmed else { return (false, nil) }
        idleTimerArmed = true
        return (false, now + idleTimeout)
    }

    private mutating func finish(close: Bool, demand: ReadDemand, now: NIODeadline) -> FinalAction {
        if close {
            state = .closing
            return .close
        }
        let idle = enterIdle(now: now)
        return .release(read: demand.pending, armIdleTimerAt: idle.armIdleTimerAt)
    }

    // MARK: Requests

    /// A request is to run. `isChannelActive`: the channel is still open (it may have closed while the
    /// connection was on its way here). `closeAfter`: the request asks for `Connection: close`.
    mutating func runRequest(method: HTTPMethod, closeAfter: Bool, isChannelActive: Bool) -> Action {
        switch state {
        case .idle where isChannelActive:
            state = .awaitingHead(close: closeAfter, isHEAD: method == .HEAD)
            return .sendRequest
        case .idle:
            // Closed, the close not yet seen here: nothing was written.
            state = .closing
            return .failRequest(ProviderError.transport(.connection, key, "connection closed before the request was sent"), written: false)
        case .closing, .closed:
            return .failRequest(ProviderError.transport(.connection, key, "connection closed before the request was sent"), written: false)
        case .awaitingHead, .headReceived, .streaming, .draining, .modifying:
            // Never handed out busy; should it happen, the request is refused before anything is written.
            return .failRequest(ProviderError.transport(.connection, key, "connection busy"), written: false)
        }
    }

    /// The request was cancelled or timed out before its response was handed over: the connection closes
    /// (the request has been resumed already).
    mutating func requestCancelled() -> Action {
        switch state {
        case .awaitingHead, .headReceived:
            state = .closing
            return .close
        case .idle, .streaming, .draining, .closing, .closed, .modifying:
            return .wait
        }
    }

    // MARK: Response

    /// The channel wants to read.
    mutating func read() -> Action {
        guard case .streaming(let close, var demand) = state else { return .read }
        guard demand.paused else { return .read }
        demand.pending = true
        state = .streaming(close: close, demand)
        return .wait
    }

    mutating func channelRead(_ part: HTTPClientResponsePart, now: NIODeadline) -> Action {
        switch part {
        case .head(let head):
            switch state {
            case .awaitingHead(let closeAfter, let isHEAD):
                let close = closeAfter || !head.isKeepAlive || head.status == .switchingProtocols
                    || !Self.isFramed(head, isHEAD: isHEAD)
                state = .headReceived(head, nil, close: close)
                return .wait
            case .closing, .closed, .modifying:
                return .wait
            case .idle, .headReceived, .streaming, .draining:
                return protocolError("unexpected response")
            }

        case .body(var part):
            switch state {
            case .headReceived(let head, var pending, let close):
                // Out of the state while appending, so the buffer is not copied.
                state = .modifying
                if pending == nil {
                    pending = part
                } else {
                    pending!.writeBuffer(&part)
                }
                state = .headReceived(head, pending, close: close)
                return .wait
            case .streaming:
                return .forwardBodyPart(part)
            case .draining, .closing, .closed, .modifying:
                return .wait
            case .idle, .awaitingHead:
                return protocolError("unexpected response body")
            }

        case .end:
            switch state {
            case .headReceived(let head, let pending, let close):
                return .forwardResponse(head, pending, finish(close: close, demand: ReadDemand(), now: now))
            case .streaming(let close, let demand):
                return .finishBody(finish(close: close, demand: demand, now: now))
            case .draining(let close):
                return .finishDraining(finish(close: close, demand: ReadDemand(), now: now))
            case .closing, .closed, .modifying:
                return .wait
            case .idle, .awaitingHead:
                return protocolError("unexpected end of response")
            }
        }
    }

    /// A read is complete: a head whose body goes on is handed over now, with a streamed body.
    mutating func channelReadComplete() -> Action {
        guard case .headReceived(let head, let pending, let close) = state else { return .wait }
        state = .streaming(close: close, ReadDemand())
        return .startStreaming(head, pending)
    }

    /// Whether the response's end is known without the connection closing.
    static func isFramed(_ head: HTTPResponseHead, isHEAD: Bool) -> Bool {
        let code = head.status.code
        if isHEAD || code < 200 || code == 204 || code == 304 { return true }
        return head.headers.contains(name: "content-length") || head.headers.contains(name: "transfer-encoding")
    }

    // MARK: The body's reader

    /// The body's buffer went over its high-water mark: reads are held back.
    mutating func bodyReaderIsBehind() {
        guard case .streaming(let close, var demand) = state else { return }
        demand.paused = true
        state = .streaming(close: close, demand)
    }

    /// The body's reader caught up: reads resume, with the read held back if any.
    mutating func bodyReaderCaughtUp() -> Action {
        guard case .streaming(let close, let demand) = state, demand.paused else { return .wait }
        state = .streaming(close: close, ReadDemand())
        return demand.pending ? .read : .wait
    }

    /// The body's reader went away before the end: the rest is read and dropped.
    mutating func bodyAbandoned() -> Action {
        guard case .streaming(let close, let demand) = state else { return .wait }
        state = .draining(close: close)
        return .startDraining(read: demand.pending)
    }

    /// The body's reader was cancelled: the connection closes (the body has failed already).
    mutating func bodyCancelled() -> Action {
        switch state {
        case .streaming, .draining:
            state = .closing
            return .close
        case .idle, .awaitingHead, .headReceived, .closing, .closed, .modifying:
            return .wait
        }
    }

    /// The rest of an abandoned body took too long.
    mutating func drainTimeoutFired() -> Action {
        guard case .draining = state else { return .wait }
        state = .closing
        return .close
    }

    // MARK: Idle

    /// The idle timer fired.
    mutating func idleTimerFired(now: NIODeadline) -> Action {
        idleTimerArmed = false
        guard case .idle = state else { return .wait }  // busy: armed again on its return to idle
        let due = idleSince + idleTimeout
        if due > now {
            idleTimerArmed = true
            return .armIdleTimer(due)
        }
        return .closeIfIdleInPool
    }

    /// The idle timer found the connection idle but not in the pool: leased, about to run a request or to be
    /// given back. The timer is armed again, for the whole timeout.
    mutating func idleTimerFoundConnectionLeased(now: NIODeadline) -> Action {
        guard case .idle = state, !idleTimerArmed else { return .wait }
        idleTimerArmed = true
        idleSince = now
        return .armIdleTimer(now + idleTimeout)
    }

    /// The idle connection is out of the pool: it closes.
    mutating func closeIdle() -> Action {
        guard case .idle = state else { return .wait }
        state = .closing
        return .close
    }

    // MARK: Errors and close

    /// An error in the pipeline (the decoder's, the socket's, TLS): the connection closes, and what it carries
    /// fails with the error.
    mutating func errorCaught(_ error: any Error) -> Action {
        if closeCause == nil { closeCause = error }
        switch state {
        case .awaitingHead, .headReceived:
            state = .closing
            return .failRequestAndClose(Self.connectionError(error, key, "connection failed before the response completed"))
        case .streaming:
            state = .closing
            return .failBodyAndClose(Self.connectionError(error, key, "connection failed before the response completed"))
        case .idle, .draining:
            state = .closing
            return .close
        case .closing, .closed, .modifying:
            return .wait
        }
    }

    /// The channel closed.
    mutating func channelInactive() -> Action {
        let previous = state
        state = .closed
        idleTimerArmed = false
        switch previous {
        case .awaitingHead:
            return .failRequest(Self.connectionError(closeCause, key, "connection closed before the response"), written: true)
        case .headReceived:
            return .failRequest(Self.connectionError(closeCause, key, "connection closed before the response completed"), written: true)
        case .streaming:
            return .failBody(Self.connectionError(closeCause, key, "connection closed before the response completed"))
        case .idle, .draining, .closing, .closed, .modifying:
            return .wait
        }
    }

    private mutating func protocolError(_ what: String) -> Action {
        errorCaught(ProviderError.transport(.invalidResponse, key, what))
    }

    /// The error a request or body fails with: the cause classified, with the host and port.
    static func connectionError(_ cause: (any Error)?, _ key: ConnectionKey, _ what: String) -> any Error {
        guard let cause else { return ProviderError.transport(.connection, key, what) }
        if cause is CancellationError || cause is ProviderError { return cause }
        if let parser = cause as? HTTPParserError {
            // The end of the stream in the middle of a response is a broken connection; the rest is garbage.
            if parser == .invalidEOFState { return ProviderError.transport(.connection, key, what) }
            return ProviderError.transport(.invalidResponse, key, "malformed HTTP response: \(parser)")
        }
        if cause is NIOHTTPDecoderError || cause is ByteToMessageDecoderError {
            return ProviderError.transport(.invalidResponse, key, "malformed HTTP response: \(cause)")
        }
        return ProviderError.transport(.connection, key, "\(what): \(describeNetworkError(cause))")
    }
}

extension HTTP1ConnectionStateMachine.Action: CustomStringConvertible {
    var description: String {
        switch self {
        case .wait: "wait"
        case .read: "read"
        case .sendRequest: "sendRequest"
        case .failRequest(let error, let written): "failRequest(\(error), written: \(written))"
        case .failRequestAndClose(let error): "failRequestAndClose(\(error))"
        case .forwardResponse(let head, let body, let final): "forwardResponse(\(head.status.code), \(body?.readableBytes ?? 0) bytes, \(final))"
        case .startStreaming(let head, let body): "startStreaming(\(head.status.code), \(body?.readableBytes ?? 0) bytes)"
        case .forwardBodyPart(let part): "forwardBodyPart(\(part.readableBytes) bytes)"
        case .finishBody(let final): "finishBody(\(final))"
        case .failBody(let error): "failBody(\(error))"
        case .failBodyAndClose(let error): "failBodyAndClose(\(error))"
        case .startDraining(let read): "startDraining(read: \(read))"
        case .finishDraining(let final): "finishDraining(\(final))"
        case .close: "close"
        case .armIdleTimer(let deadline): "armIdleTimer(\(deadline))"
        case .closeIfIdleInPool: "closeIfIdleInPool"
        }
    }
}
