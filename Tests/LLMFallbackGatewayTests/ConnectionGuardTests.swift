import NIOCore
import Synchronization
import Testing

@testable import LLMFallbackGateway

/// The connection guard's decisions, without sockets: deadlines for a request's head and body, pipelining, the
/// lingering close after an early answer.
@Suite("Connection guard state")
struct ConnectionGuardStateTests {
    static let timeouts = ConnectionGuardState.Timeouts(header: .seconds(10), body: .seconds(60), linger: .seconds(5))
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test("a head must arrive within the header timeout of its first byte, whatever trickles in between")
    func headerDeadline() {
        var state = ConnectionGuardState(timeouts: Self.timeouts)
        #expect(state.deadline == nil, "an idle connection is the idle timeout's business")
        let r1 = state.bytesRead(now: start)
        #expect(r1)
        #expect(state.deadline == start + .seconds(10))
        // More bytes of the same head do not move the deadline.
        let r2 = state.bytesRead(now: start + .seconds(5))
        #expect(!r2)
        #expect(state.deadline == start + .seconds(10))
        let r3 = state.timerFired(now: start + .seconds(9))
        #expect(r3 == .sleep(until: start + .seconds(10)))
        let r4 = state.timerFired(now: start + .seconds(10))
        #expect(r4 == .close(.headerTimeout))
    }

    @Test("a body must arrive within the body timeout of its head; an answered request times nothing")
    func bodyDeadline() {
        var state = ConnectionGuardState(timeouts: Self.timeouts)
        _ = state.bytesRead(now: start)
        let r5 = state.headRead(now: start + .seconds(1))
        #expect(r5)
        #expect(state.deadline == start + .seconds(61))
        let r6 = state.timerFired(now: start + .seconds(30))
        #expect(r6 == .sleep(until: start + .seconds(35)), "ticks at the shortest timeout")
        let r7 = state.timerFired(now: start + .seconds(61))
        #expect(r7 == .close(.bodyTimeout))

        var done = ConnectionGuardState(timeouts: Self.timeouts)
        _ = done.bytesRead(now: start)
        _ = done.headRead(now: start)
        let r8 = done.endRead()
        #expect(!r8)
        #expect(done.deadline == nil, "the upstream may take as long as the chain allows")
        let r9 = done.responseHeadWritten()
        #expect(!r9)
        let r10 = done.responseEndWritten(now: start + .seconds(100))
        #expect(r10 == (false, false))
        let r11 = done.timerFired(now: start + .seconds(1000))
        #expect(r11 == .stop)
    }

    @Test("a pipelined request's time starts when the answer before it ends")
    func pipelining() {
        var state = ConnectionGuardState(timeouts: Self.timeouts)
        _ = state.bytesRead(now: start)
        _ = state.headRead(now: start)
        _ = state.endRead()
        // The next request arrives while the first is being answered.
        let r12 = state.bytesRead(now: start + .seconds(1))
        #expect(!r12)
        let r13 = state.headRead(now: start + .seconds(1))
        #expect(!r13)
        #expect(state.deadline == nil)
        let r14 = state.responseHeadWritten()
        #expect(!r14, "the request answered was read whole: no lingering")
        let ended = state.responseEndWritten(now: start + .seconds(120))
        #expect(ended == (false, true))
        #expect(state.deadline == start + .seconds(180))

        var partial = ConnectionGuardState(timeouts: Self.timeouts)
        _ = partial.bytesRead(now: start)
        _ = partial.headRead(now: start)
        _ = partial.endRead()
        let r15 = partial.bytesRead(now: start + .seconds(1))
        #expect(!r15, "part of a head, behind an answer")
        let r16 = partial.responseEndWritten(now: start + .seconds(50))
        #expect(r16 == (false, true))
        #expect(partial.deadline == start + .seconds(60))
    }

    @Test("an answer written before its body was read says Connection: close, then lingers, then closes")
    func lingeringClose() {
        var state = ConnectionGuardState(timeouts: Self.timeouts)
        _ = state.bytesRead(now: start)
        _ = state.headRead(now: start)
        let r17 = state.responseHeadWritten()
        #expect(r17, "Connection: close")
        #expect(state.isLingering)
        let r18 = state.responseEndWritten(now: start + .seconds(1))
        #expect(r18 == (true, true))
        #expect(state.deadline == start + .seconds(6))
        let r19 = state.bytesRead(now: start + .seconds(2))
        #expect(!r19, "the rest of the body is discarded, not timed as a head")
        let r20 = state.timerFired(now: start + .seconds(6))
        #expect(r20 == .close(.lingerEnded))

        var finished = ConnectionGuardState(timeouts: Self.timeouts)
        _ = finished.bytesRead(now: start)
        _ = finished.headRead(now: start)
        _ = finished.responseHeadWritten()
        _ = finished.responseEndWritten(now: start)
        let r21 = finished.endRead()
        #expect(r21, "the body's end arrived: close now")
    }
}

@Suite("Connection watch")
struct ConnectionWatchTests {
    @Test("work runs to its end when the client stays")
    func clientStays() async throws {
        let watch = ConnectionWatch()
        let value = try await watch.cancellingOnDisconnect { 42 }
        #expect(value == 42)
        let again = try await watch.cancellingOnDisconnect { "twice on one connection" }
        #expect(again == "twice on one connection")
    }

    @Test("work is cancelled when the client leaves while it runs")
    func clientLeaves() async throws {
        let watch = ConnectionWatch()
        let (started, didStart) = AsyncStream<Void>.makeStream()
        let leaving = Task {
            var iterator = started.makeAsyncIterator()
            await iterator.next()
            watch.clientWentAway()
        }
        let outcome = await Result {
            try await watch.cancellingOnDisconnect { () async throws -> Int in
                didStart.yield()
                // Until cancelled (bounded, should the cancellation never come).
                try await Task.sleep(for: .seconds(60))
                return 1
            }
        }
        _ = await leaving.value
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(watch.isClosed)
    }

    @Test("work started after the client left is cancelled at once")
    func clientAlreadyGone() async throws {
        let watch = ConnectionWatch()
        watch.clientWentAway()
        let started = ContinuousClock.now
        let outcome = await Result {
            try await watch.cancellingOnDisconnect { () async throws -> Int in
                try await Task.sleep(for: .seconds(60))
                return 1
            }
        }
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("the caller's cancellation reaches the work")
    func callerCancelled() async throws {
        let watch = ConnectionWatch()
        let (started, didStart) = AsyncStream<Void>.makeStream()
        let task = Task {
            try await watch.cancellingOnDisconnect { () async throws -> Int in
                didStart.yield()
                try await Task.sleep(for: .seconds(60))
                return 1
            }
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        task.cancel()
        let outcome = await task.result
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(!watch.isClosed)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
