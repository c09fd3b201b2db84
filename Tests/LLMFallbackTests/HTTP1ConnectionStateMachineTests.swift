import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import LLMFallback

/// ``HTTP1ConnectionStateMachine`` without sockets: every transition of a pooled connection's life, in the manner
/// of AsyncHTTPClient's `HTTP1ConnectionStateMachineTests`.
@Suite struct HTTP1ConnectionStateMachineTests {
    typealias Machine = HTTP1ConnectionStateMachine
    typealias Action = HTTP1ConnectionStateMachine.Action

    static let key = ConnectionKey(isTLS: false, host: "10.0.0.7", port: 8000)
    static let timeout = TimeAmount.seconds(60)
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func framed(_ headers: HTTPHeaders = ["content-length": "5"], status: HTTPResponseStatus = .ok, version: HTTPVersion = .http1_1) -> HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// An adopted, idle machine.
    func idle(at now: NIODeadline = t0) -> Machine {
        var machine = Machine(key: Self.key, idleTimeout: Self.timeout)
        #expect(machine.adopted(now: now).isArmIdleTimer(at: now + Self.timeout))
        return machine
    }

    /// A machine with a request written and nothing read.
    func awaitingHead(closeAfter: Bool = false, method: HTTPMethod = .POST) -> Machine {
        var machine = idle()
        #expect(machine.runRequest(method: method, closeAfter: closeAfter, isChannelActive: true).isSendRequest)
        return machine
    }

    /// A machine whose response head is handed over and whose body streams.
    func streaming(_ head: HTTPResponseHead = framed(["transfer-encoding": "chunked"])) -> Machine {
        var machine = awaitingHead()
        #expect(machine.channelRead(.head(head), now: Self.t0).isWait)
        #expect(machine.channelReadComplete().isStartStreaming)
        return machine
    }

    // MARK: Complete responses

    @Test func aResponseInOneReadIsForwardedWholeAndTheConnectionReturnsToThePool() {
        var machine = awaitingHead()
        #expect(machine.read().isRead)
        #expect(machine.channelRead(.head(Self.framed()), now: Self.t0).isWait)
        #expect(machine.channelRead(.body(ByteBuffer(string: "he")), now: Self.t0).isWait)
        #expect(machine.channelRead(.body(ByteBuffer(string: "llo")), now: Self.t0).isWait)
        let end = machine.channelRead(.end(nil), now: Self.t0 + .seconds(1))
        guard case .forwardResponse(let head, let body, .release(read: false, armIdleTimerAt: nil)) = end else {
            Issue.record("expected the whole response and a release, got \(end)")
            return
        }
        #expect(head.status == .ok)
        #expect(body.map { String(buffer: $0) } == "hello")
        #expect(machine.isIdle)
        #expect(machine.isIdleTimerArmed)  // armed since the connect, still running
        #expect(machine.channelReadComplete().isWait)
        #expect(machine.read().isRead)
        // And the next request runs.
        #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isSendRequest)
    }

    @Test func aStreamedBodyIsForwardedPartByPart() {
        var machine = awaitingHead()
        #expect(machine.channelRead(.head(Self.framed(["transfer-encoding": "chunked"])), now: Self.t0).isWait)
        #expect(machine.channelRead(.body(ByteBuffer(string: "a")), now: Self.t0).isWait)
        guard case .startStreaming(_, let initial) = machine.channelReadComplete() else {
            Issue.record("the head should be handed over at the end of the read")
            return
        }
        #expect(initial.map { String(buffer: $0) } == "a")
        guard case .forwardBodyPart(let part) = machine.channelRead(.body(ByteBuffer(string: "b")), now: Self.t0) else {
            Issue.record("a later part goes straight to the body")
            return
        }
        #expect(String(buffer: part) == "b")
        #expect(machine.channelReadComplete().isWait)
        #expect(machine.channelRead(.end(nil), now: Self.t0).isFinishBody(.release(read: false, armIdleTimerAt: nil)))
        #expect(machine.isIdle)
    }

    // MARK: Finding 2: pause, then end, then reuse

    @Test func aPauseThenTheEndInTheSameReadLeavesReadsRunningForTheNextRequest() {
        var machine = streaming()
        // The reader is behind: reads pause, and the channel's next read is held back.
        machine.bodyReaderIsBehind()
        #expect(machine.isReadPaused)
        // The rest of the same socket read: a last part and the end.
        #expect(machine.channelRead(.body(ByteBuffer(string: "last")), now: Self.t0).isForwardBodyPart)
        #expect(machine.channelRead(.end(nil), now: Self.t0).isFinishBody(.release(read: false, armIdleTimerAt: nil)))
        #expect(!machine.isReadPaused)
        // The read NIO issues after this read completes goes through: the pool's connection reads.
        #expect(machine.channelReadComplete().isWait)
        #expect(machine.read().isRead)
        #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isSendRequest)
        #expect(machine.read().isRead)
        #expect(machine.channelRead(.head(Self.framed()), now: Self.t0).isWait)
    }

    @Test func aReadHeldBackByThePauseIsIssuedWhenTheResponseEnds() {
        var machine = streaming()
        machine.bodyReaderIsBehind()
        #expect(machine.read().isWait)  // held back
        #expect(machine.read().isWait)  // still one
        // The end arrives (the decoder had it buffered): the held-back read is issued with the release.
        #expect(machine.channelRead(.end(nil), now: Self.t0).isFinishBody(.release(read: true, armIdleTimerAt: nil)))
        #expect(!machine.isReadPaused)
        #expect(machine.read().isRead)
    }

    @Test func theReaderCatchingUpResumesReadsOnlyWhenOneWasHeldBack() {
        var machine = streaming()
        #expect(machine.bodyReaderCaughtUp().isWait)  // never paused
        machine.bodyReaderIsBehind()
        #expect(machine.bodyReaderCaughtUp().isWait)  // paused, no read held back
        #expect(!machine.isReadPaused)
        machine.bodyReaderIsBehind()
        #expect(machine.read().isWait)
        #expect(machine.bodyReaderCaughtUp().isRead)
        #expect(machine.read().isRead)
    }

    // MARK: Close-delimited bodies and closing responses

    @Test func aBodyThatEndsWithTheConnectionNeverGoesBackToThePool() {
        // No length, no chunks: the body ends when the server closes; the decoder sends the end as the
        // connection goes.
        var machine = streaming(Self.framed([:]))
        #expect(machine.channelRead(.body(ByteBuffer(string: "until the end")), now: Self.t0).isForwardBodyPart)
        #expect(machine.channelRead(.end(nil), now: Self.t0).isFinishBody(.close))
        #expect(machine.isClosed)
        // A waiter handed this connection now would be refused before anything is written.
        #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isFailRequest(written: false))
        #expect(machine.channelInactive().isWait)

        // The same in one read.
        var whole = awaitingHead()
        #expect(whole.channelRead(.head(Self.framed([:])), now: Self.t0).isWait)
        #expect(whole.channelRead(.body(ByteBuffer(string: "x")), now: Self.t0).isWait)
        #expect(whole.channelRead(.end(nil), now: Self.t0).isForwardResponse(.close))
    }

    @Test(arguments: [
        ("connection: close", Self.framed(["content-length": "0", "connection": "close"]), false, HTTPMethod.POST, true),
        ("HTTP/1.0", Self.framed(["content-length": "0"], version: .http1_0), false, .POST, true),
        ("HTTP/1.0 keep-alive", Self.framed(["content-length": "0", "connection": "keep-alive"], version: .http1_0), false, .POST, false),
        ("switching protocols", Self.framed(["content-length": "0"], status: .switchingProtocols), false, .POST, true),
        ("request asked for close", Self.framed(["content-length": "0"]), true, .POST, true),
        ("204 without length", Self.framed([:], status: .noContent), false, .POST, false),
        ("304 without length", Self.framed([:], status: .notModified), false, .GET, false),
        ("HEAD without length", Self.framed([:]), false, .HEAD, false),
        ("chunked", Self.framed(["transfer-encoding": "chunked"]), false, .POST, false),
        ("close-delimited", Self.framed([:]), false, .POST, true),
    ])
    func whetherAResponseLeavesTheConnectionReusable(
        _ name: String,
        _ head: HTTPResponseHead,
        _ closeAfter: Bool,
        _ method: HTTPMethod,
        _ closes: Bool
    ) {
        var machine = awaitingHead(closeAfter: closeAfter, method: method)
        #expect(machine.channelRead(.head(head), now: Self.t0).isWait, "\(name)")
        let end = machine.channelRead(.end(nil), now: Self.t0)
        #expect(end.isForwardResponse(closes ? .close : .release(read: false, armIdleTimerAt: nil)), "\(name): \(end)")
        #expect(machine.isClosed == closes, "\(name)")
    }

    // MARK: Finding 5: replay only when nothing was written

    @Test func aRequestIsRefusedUnwrittenOnlyBeforeAnythingWentOut() {
        // The channel closed on the connection's way to the request: refused, never written.
        var closedUnseen = idle()
        #expect(closedUnseen.runRequest(method: .POST, closeAfter: false, isChannelActive: false).isFailRequest(written: false))
        #expect(closedUnseen.isClosed)
        #expect(closedUnseen.channelInactive().isWait)

        var closed = idle()
        #expect(closed.channelInactive().isWait)
        #expect(closed.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isFailRequest(written: false))

        // Busy (never handed out so; should it happen): refused before writing, not trapped on.
        var busy = awaitingHead()
        #expect(busy.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isFailRequest(written: false))
        #expect(busy.isInRequest)

        // Written, then the server closes before any response byte: a failure, never a retry.
        var written = awaitingHead()
        let inactive = written.channelInactive()
        #expect(inactive.isFailRequest(written: true))
        #expect(inactive.errorKind == .connection)
        #expect(inactive.errorMessage?.contains("10.0.0.7:8000") == true)

        // Written, the head in, then the close.
        var headIn = awaitingHead()
        #expect(headIn.channelRead(.head(Self.framed()), now: Self.t0).isWait)
        #expect(headIn.channelInactive().isFailRequest(written: true))

        // Written, then a reset: the same.
        var reset = awaitingHead()
        let error = reset.errorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        #expect(error.isFailRequestAndClose)
        #expect(error.errorKind == .connection)
        #expect(reset.channelInactive().isWait)  // failed once only
    }

    // MARK: Finding 20: the idle timer

    @Test func theIdleTimerRunsWhileIdleAndClosesAfterTheTimeout() {
        var machine = Machine(key: Self.key, idleTimeout: Self.timeout)
        #expect(!machine.isIdleTimerArmed)  // not the pool's yet
        #expect(machine.adopted(now: Self.t0).isArmIdleTimer(at: Self.t0 + Self.timeout))
        #expect(machine.isIdleTimerArmed)
        // Used and idle again half-way: the running timer is kept, and moved on when it fires.
        #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isSendRequest)
        #expect(machine.channelRead(.head(Self.framed()), now: Self.t0).isWait)
        #expect(machine.channelRead(.end(nil), now: Self.t0 + .seconds(30)).isForwardResponse(.release(read: false, armIdleTimerAt: nil)))
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout).isArmIdleTimer(at: Self.t0 + .seconds(30) + Self.timeout))
        #expect(machine.idleTimerFired(now: Self.t0 + .seconds(30) + Self.timeout).isCloseIfIdleInPool)
        #expect(machine.closeIdle().isClose)
        #expect(machine.channelInactive().isWait)
        #expect(!machine.isIdleTimerArmed)
    }

    @Test func theIdleTimerFiringDuringARequestIsArmedAgainWhenTheConnectionIsIdle() {
        var machine = awaitingHead()
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout).isWait)
        #expect(!machine.isIdleTimerArmed)
        #expect(machine.channelRead(.head(Self.framed()), now: Self.t0).isWait)
        let end = machine.channelRead(.end(nil), now: Self.t0 + Self.timeout + .seconds(1))
        #expect(end.isForwardResponse(.release(read: false, armIdleTimerAt: Self.t0 + Self.timeout + .seconds(1) + Self.timeout)))
        #expect(machine.isIdleTimerArmed)
    }

    @Test func theIdleTimerFindingTheConnectionLeasedIsArmedAgain() {
        // Finding 20: a lease takes the connection out of the pool, the timer fires and finds it idle but not
        // in the pool, then the lease gives it back unused (from another thread, without telling it).
        var machine = idle()
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout).isCloseIfIdleInPool)
        #expect(machine.idleTimerFoundConnectionLeased(now: Self.t0 + Self.timeout).isArmIdleTimer(at: Self.t0 + Self.timeout + Self.timeout))
        #expect(machine.isIdleTimerArmed)
        // Given back: still idle, the timer runs, and closes it in time.
        #expect(machine.isIdle)
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout * 2).isCloseIfIdleInPool)
        #expect(machine.closeIdle().isClose)
    }

    @Test func everyWayBackToIdleLeavesTheIdleTimerArmed() {
        // Whatever the order of the timer and the requests, an idle open connection has its timer armed.
        var generator = SeededGenerator(seed: 0x5EED)
        for _ in 0..<200 {
            var machine = idle()
            var now = Self.t0
            var armed = true  // what the shell would have scheduled
            events: for _ in 0..<40 {
                now = now + .seconds(Int64(generator.next() % 40))
                let action: Action
                switch generator.next() % 5 {
                case 0 where armed:
                    armed = false
                    action = machine.idleTimerFired(now: now)
                case 1:
                    action = machine.idleTimerFoundConnectionLeased(now: now)
                default:
                    guard machine.isIdle else { continue }
                    #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isSendRequest)
                    #expect(machine.channelRead(.head(Self.framed()), now: now).isWait)
                    guard case .forwardResponse(_, _, .release(_, let deadline)) = machine.channelRead(.end(nil), now: now) else {
                        Issue.record("a keep-alive response releases the connection")
                        return
                    }
                    if deadline != nil { armed = true }
                    continue
                }
                switch action {
                case .armIdleTimer: armed = true
                case .closeIfIdleInPool:
                    // Half the time the pool has it leased; otherwise it is taken out and closed.
                    if generator.next() % 2 == 0 {
                        if case .armIdleTimer = machine.idleTimerFoundConnectionLeased(now: now) { armed = true }
                    } else {
                        #expect(machine.closeIdle().isClose)
                        break events
                    }
                default: break
                }
                if machine.isIdle {
                    #expect(machine.isIdleTimerArmed)
                    #expect(armed == machine.isIdleTimerArmed)
                }
            }
        }
    }

    // MARK: Cancellation

    @Test func cancellingARequestClosesTheConnectionOnlyWhileItsResponseIsOwed() {
        var waiting = awaitingHead()
        #expect(waiting.requestCancelled().isClose)
        #expect(waiting.channelRead(.head(Self.framed()), now: Self.t0).isWait)  // dropped
        #expect(waiting.read().isRead)  // reads go on, to see the close
        #expect(waiting.channelInactive().isWait)  // the request has been resumed already

        var headIn = awaitingHead()
        #expect(headIn.channelRead(.head(Self.framed()), now: Self.t0).isWait)
        #expect(headIn.requestCancelled().isClose)

        var idle = idle()
        #expect(idle.requestCancelled().isWait)
        #expect(idle.isIdle)

        var body = streaming()
        #expect(body.requestCancelled().isWait)  // handed over: the body's reader decides
        #expect(body.bodyCancelled().isClose)
        #expect(body.channelInactive().isWait)  // the body failed itself
        #expect(body.bodyCancelled().isWait)
    }

    @Test func anAbandonedBodyIsDrainedAndTheConnectionReused() {
        var machine = streaming()
        machine.bodyReaderIsBehind()
        #expect(machine.read().isWait)
        // Draining drops the pause and issues the held-back read.
        #expect(machine.bodyAbandoned().isStartDraining(read: true))
        #expect(!machine.isReadPaused)
        #expect(machine.read().isRead)
        #expect(machine.channelRead(.body(ByteBuffer(string: "dropped")), now: Self.t0).isWait)
        #expect(machine.channelRead(.end(nil), now: Self.t0).isFinishDraining(.release(read: false, armIdleTimerAt: nil)))
        #expect(machine.drainTimeoutFired().isWait)  // late: ignored
        #expect(machine.isIdle)

        var slow = streaming()
        #expect(slow.bodyAbandoned().isStartDraining(read: false))
        #expect(slow.drainTimeoutFired().isClose)
        #expect(slow.channelInactive().isWait)

        var cancelledWhileDraining = streaming()
        #expect(cancelledWhileDraining.bodyAbandoned().isStartDraining(read: false))
        #expect(cancelledWhileDraining.bodyCancelled().isClose)
    }

    // MARK: Errors in every state

    @Test func anErrorInEveryStateClosesAndFailsWhatIsOwedOnce() {
        struct Boom: Error {}
        let states: [(String, () -> Machine, (Action) -> Bool)] = [
            ("idle", { idle() }, { $0.isClose }),
            ("awaiting head", { awaitingHead() }, { $0.isFailRequestAndClose }),
            ("head received", {
                var machine = awaitingHead()
                _ = machine.channelRead(.head(Self.framed()), now: Self.t0)
                return machine
            }, { $0.isFailRequestAndClose }),
            ("streaming", { streaming() }, { $0.isFailBodyAndClose }),
            ("streaming, paused", {
                var machine = streaming()
                machine.bodyReaderIsBehind()
                return machine
            }, { $0.isFailBodyAndClose }),
            ("draining", {
                var machine = streaming()
                _ = machine.bodyAbandoned()
                return machine
            }, { $0.isClose }),
            ("closing", {
                var machine = awaitingHead()
                _ = machine.requestCancelled()
                return machine
            }, { $0.isWait }),
            ("closed", {
                var machine = idle()
                _ = machine.channelInactive()
                return machine
            }, { $0.isWait }),
        ]
        for (name, make, expected) in states {
            var machine = make()
            let action = machine.errorCaught(Boom())
            #expect(expected(action), "\(name): \(action)")
            #expect(machine.isClosed, "\(name)")
            #expect(machine.errorCaught(Boom()).isWait, "\(name): a second error")
            #expect(machine.channelInactive().isWait, "\(name): the close after the error fails nothing twice")
            #expect(!machine.isReadPaused, "\(name)")
            #expect(machine.runRequest(method: .POST, closeAfter: false, isChannelActive: true).isFailRequest(written: false), "\(name)")
            #expect(machine.read().isRead, "\(name)")
            #expect(machine.channelRead(.end(nil), now: Self.t0).isWait, "\(name)")
        }
    }

    @Test func aResponseNobodyAskedForIsAnInvalidResponse() {
        var idle = idle()
        #expect(idle.channelRead(.head(Self.framed()), now: Self.t0).isClose)
        #expect(idle.isClosed)

        var twoHeads = awaitingHead()
        _ = twoHeads.channelRead(.head(Self.framed()), now: Self.t0)
        let second = twoHeads.channelRead(.head(Self.framed()), now: Self.t0)
        #expect(second.isFailRequestAndClose)
        #expect(second.errorKind == .invalidResponse)
    }

    @Test func errorsAreClassifiedWithTheHostAndPort() {
        func kind(_ error: any Error) -> ProviderError.Kind? {
            (Machine.connectionError(error, Self.key, "failed") as? ProviderError)?.kind
        }
        #expect(kind(HTTPParserError.invalidEOFState) == .connection)  // cut short
        #expect(kind(HTTPParserError.invalidStatus) == .invalidResponse)
        #expect(kind(HTTPParserError.invalidContentLength) == .invalidResponse)
        #expect(kind(HTTPParserError.headerOverflow) == .invalidResponse)
        #expect(kind(HTTPParserError.invalidVersion) == .invalidResponse)
        #expect(kind(IOError(errnoCode: ECONNRESET, reason: "read")) == .connection)
        #expect(Machine.connectionError(CancellationError(), Self.key, "x") is CancellationError)
        let message = (Machine.connectionError(HTTPParserError.invalidStatus, Self.key, "x") as? ProviderError)?.message
        #expect(message?.contains("(10.0.0.7:8000)") == true)
        #expect((Machine.connectionError(nil, Self.key, "closed") as? ProviderError)?.message == "closed (10.0.0.7:8000)")
    }

    // MARK: Any order of events

    @Test func noOrderOfEventsTrapsOrLeavesAPooledConnectionPaused() {
        var generator = SeededGenerator(seed: 42)
        let parts: [HTTPClientResponsePart] = [
            .head(Self.framed(["transfer-encoding": "chunked"])), .head(Self.framed([:])), .head(Self.framed(["content-length": "0", "connection": "close"])),
            .body(ByteBuffer(string: "x")), .end(nil),
        ]
        for _ in 0..<500 {
            var machine = idle()
            var requestOwed = false
            var bodyOwed = false
            func account(_ action: Action, _ machine: Machine) {
                switch action {
                case .sendRequest: requestOwed = true
                case .failRequest(_, let written):
                    if written { #expect(requestOwed); requestOwed = false }
                case .failRequestAndClose: #expect(requestOwed); requestOwed = false
                case .forwardResponse(_, _, let final):
                    #expect(requestOwed)
                    requestOwed = false
                    if case .release = final { #expect(!machine.isReadPaused && machine.isIdle && machine.isIdleTimerArmed) }
                case .startStreaming: #expect(requestOwed); requestOwed = false; bodyOwed = true
                case .finishBody(let final), .finishDraining(let final):
                    bodyOwed = false
                    if case .release = final { #expect(!machine.isReadPaused && machine.isIdle && machine.isIdleTimerArmed) }
                case .failBody, .failBodyAndClose: #expect(bodyOwed); bodyOwed = false
                case .startDraining: bodyOwed = false
                default: break
                }
                if machine.isIdle { #expect(!machine.isReadPaused && !requestOwed && !bodyOwed) }
            }
            for _ in 0..<30 {
                let action: Action
                switch generator.next() % 13 {
                case 0: action = machine.runRequest(method: .POST, closeAfter: generator.next() % 8 == 0, isChannelActive: generator.next() % 8 != 0)
                case 1, 2, 3: action = machine.channelRead(parts[Int(generator.next() % UInt64(parts.count))], now: Self.t0)
                case 4: action = machine.channelReadComplete()
                case 5: action = machine.read()
                case 6: machine.bodyReaderIsBehind(); continue
                case 7: action = machine.bodyReaderCaughtUp()
                case 8: action = machine.bodyAbandoned()
                case 9:
                    action = machine.bodyCancelled()
                    if action.isClose { bodyOwed = false }  // the body failed itself
                case 10:
                    action = machine.requestCancelled()
                    if action.isClose { requestOwed = false }  // the request was resumed
                case 11: action = machine.idleTimerFired(now: Self.t0 + Self.timeout)
                default:
                    action = generator.next() % 4 == 0 ? machine.channelInactive() : machine.errorCaught(IOError(errnoCode: EPIPE, reason: "write"))
                }
                account(action, machine)
            }
            // However it went, the close leaves nothing owed.
            account(machine.channelInactive(), machine)
            #expect(!requestOwed && !bodyOwed)
        }
    }
}

extension HTTP1ConnectionStateMachine.Action {
    var isWait: Bool { if case .wait = self { true } else { false } }
    var isRead: Bool { if case .read = self { true } else { false } }
    var isSendRequest: Bool { if case .sendRequest = self { true } else { false } }
    var isClose: Bool { if case .close = self { true } else { false } }
    var isCloseIfIdleInPool: Bool { if case .closeIfIdleInPool = self { true } else { false } }
    var isStartStreaming: Bool { if case .startStreaming = self { true } else { false } }
    var isForwardBodyPart: Bool { if case .forwardBodyPart = self { true } else { false } }
    var isFailRequestAndClose: Bool { if case .failRequestAndClose = self { true } else { false } }
    var isFailBodyAndClose: Bool { if case .failBodyAndClose = self { true } else { false } }
    func isFailRequest(written: Bool) -> Bool {
        if case .failRequest(_, let actual) = self { actual == written } else { false }
    }
    func isArmIdleTimer(at deadline: NIODeadline) -> Bool {
        if case .armIdleTimer(let actual) = self { actual == deadline } else { false }
    }
    func isForwardResponse(_ final: HTTP1ConnectionStateMachine.FinalAction) -> Bool {
        if case .forwardResponse(_, _, let actual) = self { actual == final } else { false }
    }
    func isFinishBody(_ final: HTTP1ConnectionStateMachine.FinalAction) -> Bool {
        if case .finishBody(let actual) = self { actual == final } else { false }
    }
    func isFinishDraining(_ final: HTTP1ConnectionStateMachine.FinalAction) -> Bool {
        if case .finishDraining(let actual) = self { actual == final } else { false }
    }
    func isStartDraining(read: Bool) -> Bool {
        if case .startDraining(let actual) = self { actual == read } else { false }
    }
    var error: (any Error)? {
        switch self {
        case .failRequest(let error, _), .failRequestAndClose(let error), .failBody(let error), .failBodyAndClose(let error): error
        default: nil
        }
    }
    var errorKind: ProviderError.Kind? { (error as? ProviderError)?.kind }
    var errorMessage: String? { (error as? ProviderError)?.message }
}
