import Logging
import Tracing
import Metrics

extension FallbackChain {
    /// Runs `run` on its first candidate and, when that has not answered within the hedge delay, starts a second
    /// leg on the same execution: it takes the next candidate from the same queue, so no provider is called twice,
    /// the request is counted once, and the trace holds both legs' attempts. The first answer wins; the other leg
    /// is cancelled (a cancellation never counts against a provider's health).
    func hedged<Value: Sendable>(_ run: Execution, hedging: Hedging, span: any Span, attempt: @escaping Attempt<Value>) async throws -> Outcome<Value> {
        let delay = hedgeDelay(for: run.planned[0], hedging: hedging)
        let hedgeStarted = HedgeFlag()
        // Each leg ends with its answer, or `nil` when it ran out of candidates (or, for the hedge, never began).
        return try await withThrowingTaskGroup(of: (isHedge: Bool, outcome: Outcome<Value>?).self) { group in
            group.addTask {
                (false, try await self.drive(run, span: span, attempt: attempt))
            }
            group.addTask {
                do {
                    try await self.clock.sleep(until: self.clock.now() + delay)
                } catch {
                    return (true, nil)  // The first leg finished first.
                }
                guard self.hedges.acquire(limit: hedging.maxConcurrentHedges) else {
                    return (true, nil)  // The cap is reached: let the first leg finish alone.
                }
                defer { self.hedges.release() }
                hedgeStarted.set()
                Counter(label: "llm_fallback_hedges_total", factory: self.metricsFactory).increment()
                self.logger.debug("hedging", metadata: ["slow": "\(self.entries[run.planned[0]].provider.name)", "delay_ms": "\(delay.milliseconds)"])
                return (true, try await self.drive(run, span: span, attempt: attempt))
            }
            while true {
                let result: (isHedge: Bool, outcome: Outcome<Value>?)?
                do {
                    result = try await group.next()
                } catch {
                    // A decision that ends the request (a policy's stop, an interrupted stream), or cancellation.
                    group.cancelAll()
                    if Task.isCancelled { throw CancellationError() }
                    throw error
                }
                guard let finished = result else { break }  // Both legs are done.
                if let outcome = finished.outcome {
                    group.cancelAll()
                    return outcome
                }
                // The first leg ran out of candidates before any hedge began: nothing is left to try (the queue is
                // empty or the deadline passed), so the hedge need not wait out its delay.
                if !finished.isHedge, !hedgeStarted.isSet {
                    group.cancelAll()
                }
            }
            span.setStatus(SpanStatus(code: .error, message: "all providers failed"))
            throw run.allFailed()
        }
    }

    func hedgeDelay(for index: Int, hedging: Hedging) -> Duration {
        switch hedging.base {
        case .fixed(let delay):
            return delay
        case .percentile(let percentile, let minimum):
            let observed = health.latencyPercentile(index, percentile, now: clock.now())
            return max(minimum, observed ?? entries[index].provider.timeout / 2)
        }
    }

}
