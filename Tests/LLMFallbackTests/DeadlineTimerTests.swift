import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import LLMFallback

/// The real clock's timers (attempt deadlines, stream watchdogs, sleeps) share one event loop timer per loop: each
/// action must run once, at or after its instant, in order; a cancelled one must never run; and what the table and
/// heap hold must not outlive the actions.
@Suite("Deadline timer")
struct DeadlineTimerTests {
    /// Records which actions ran, in order, and waits for a number of them (within a generous bound).
    final class Recorder: Sendable {
        private let state = Mutex<[Int]>([])
        private let early = Mutex(0)
        func record(_ value: Int) { state.withLock { $0.append(value) } }
        /// Records `value`, and counts it as early unless `due` has passed.
        func record(_ value: Int, due: NIODeadline) {
            if NIODeadline.now() < due { early.withLock { $0 += 1 } }
            record(value)
        }
        var values: [Int] { state.withLock { $0 } }
        var earlyCount: Int { early.withLock { $0 } }

        func wait(for count: Int, within limit: Duration = .seconds(30)) async throws {
            let start = ContinuousClock.now
            while values.count < count, ContinuousClock.now - start < limit {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    func timer() -> DeadlineTimer { DeadlineTimer(loop: MultiThreadedEventLoopGroup.singleton.next()) }

    @Test("runs each action once, at or after its instant, in the order they come due")
    func runsInOrder() async throws {
        let timer = timer()
        let recorder = Recorder()
        let start = NIODeadline.now()
        // Scheduled out of order: later first, then earlier ones (each of those re-arms the loop's timer).
        for (value, delay) in [(3, 90), (1, 30), (2, 60), (0, 10)] {
            let due = start + .milliseconds(Int64(delay))
            #expect(timer.schedule(at: due) { recorder.record(value, due: due) } != nil)
        }
        try await recorder.wait(for: 4)
        #expect(recorder.values == [0, 1, 2, 3])
        #expect(recorder.earlyCount == 0)
        #expect(timer.pendingCount == 0)
    }

    @Test("a cancelled action never runs, and the others still do")
    func cancelled() async throws {
        let timer = timer()
        let recorder = Recorder()
        let start = NIODeadline.now()
        let first = try #require(timer.schedule(at: start + .milliseconds(20)) { recorder.record(1) })
        let second = try #require(timer.schedule(at: start + .milliseconds(40)) { recorder.record(2) })
        _ = try #require(timer.schedule(at: start + .milliseconds(60)) { recorder.record(3) })
        timer.cancel(first)
        timer.cancel(second)
        timer.cancel(second)  // Twice: nothing happens.
        try await recorder.wait(for: 1)
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.values == [3])
        #expect(timer.pendingCount == 0)
    }

    @Test("the timer fires for the earliest action even when the one it was armed for was cancelled")
    func armedForACancelledAction() async throws {
        let timer = timer()
        let recorder = Recorder()
        let start = NIODeadline.now()
        let early = try #require(timer.schedule(at: start + .milliseconds(10)) { recorder.record(0) })
        timer.cancel(early)
        _ = try #require(timer.schedule(at: start + .milliseconds(40)) { recorder.record(1) })
        try await recorder.wait(for: 1)
        #expect(recorder.values == [1])
    }

    @Test("many actions scheduled and cancelled leave nothing behind, and a late one still runs")
    func manyCancelled() async throws {
        let timer = timer()
        let recorder = Recorder()
        // Far-off deadlines, cancelled in an order unlike their deadlines', so that the heap is compacted.
        var ids: [UInt64] = []
        for index in 0..<10_000 {
            let due = NIODeadline.now() + .seconds(Int64(3600 + index % 97))
            ids.append(try #require(timer.schedule(at: due) { recorder.record(-1) }))
        }
        #expect(timer.pendingCount == 10_000)
        for id in ids.reversed() { timer.cancel(id) }
        #expect(timer.pendingCount == 0)
        _ = try #require(timer.schedule(at: .now() + .milliseconds(20)) { recorder.record(7) })
        try await recorder.wait(for: 1)
        #expect(recorder.values == [7])
    }

    @Test("actions scheduled from many tasks at once each run once")
    func concurrent() async throws {
        let timer = timer()
        let recorder = Recorder()
        await withTaskGroup(of: Void.self) { group in
            for value in 0..<200 {
                group.addTask {
                    // Every other one is far off and cancelled at once.
                    let delay: TimeAmount = value % 2 == 0 ? .milliseconds(Int64(5 + value % 20)) : .seconds(3600)
                    let id = timer.schedule(at: .now() + delay) { recorder.record(value) }
                    if value % 2 == 1, let id { timer.cancel(id) }
                }
            }
        }
        try await recorder.wait(for: 100)
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.values.sorted() == Array(stride(from: 0, to: 200, by: 2)))
        #expect(timer.pendingCount == 0)
    }

    @Test("Int128's approximate Double is Double(_:) within a unit in the last place")
    func approximateDouble() {
        var values: [Int128] = [0, 1, -1, -5, 999, 1 << 52, 1 << 53, (1 << 53) + 1, Int128(Int64.max), Int128(Int64.min)]
        values += [Int128(Int64.max) + 1, Int128(Int64.min) - 1, .max, .min, Int128(1) << 100, -(Int128(1) << 100) + 12_345]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let high = Int64.random(in: .min ... .max, using: &generator) >> Int64.random(in: 0...63, using: &generator)
            let low = UInt64.random(in: .min ... .max, using: &generator)
            values.append(Int128(high) << 64 | Int128(low))
            values.append(Int128(Int64.random(in: .min ... .max, using: &generator)))
        }
        for value in values {
            let exact = Double(value)
            let approximate = value.approximateDouble
            #expect(approximate == exact || abs(approximate - exact) <= exact.ulp.magnitude, "\(value)")
            if let small = Int64(exactly: value) { #expect(approximate == Double(small)) }
        }
        #expect(Duration.milliseconds(1_500).milliseconds == 1_500)
        #expect(Duration.seconds(-2).milliseconds == -2_000)
    }
}
