import Testing

@testable import LLMFallback

@Suite struct CircuitBreakerTests {
    let config = CircuitBreaker.Configuration(failureThreshold: 3, recoveryTimeout: .seconds(60))

    @Test func opensAfterThresholdConsecutiveFailures() {
        var breaker = CircuitBreaker(configuration: config)
        #expect(breaker.record(.failure, wasProbe: false, now: .seconds(1)) == nil)
        #expect(breaker.record(.failure, wasProbe: false, now: .seconds(2)) == nil)
        #expect(breaker.record(.failure, wasProbe: false, now: .seconds(3)) == .open)
        #expect(breaker.state == .open)
        #expect(breaker.admit(now: .seconds(4)) == .rejected(until: .seconds(63)))
    }

    @Test func successResetsTheCount() {
        var breaker = CircuitBreaker(configuration: config)
        breaker.record(.failure, wasProbe: false, now: .zero)
        breaker.record(.failure, wasProbe: false, now: .zero)
        breaker.record(.success, wasProbe: false, now: .zero)
        breaker.record(.failure, wasProbe: false, now: .zero)
        #expect(breaker.state == .closed)
        #expect(breaker.consecutiveFailures == 1)
    }

    @Test func clientErrorsDoNotCount() {
        var breaker = CircuitBreaker(configuration: config)
        for _ in 0..<10 { breaker.record(.neutral, wasProbe: false, now: .zero) }
        #expect(breaker.state == .closed)
        #expect(breaker.consecutiveFailures == 0)
    }

    @Test func halfOpenLetsOneProbeThroughAndClosesOnSuccess() {
        var breaker = CircuitBreaker(configuration: config)
        for _ in 0..<3 { breaker.record(.failure, wasProbe: false, now: .zero) }
        #expect(breaker.admit(now: .seconds(59)) == .rejected(until: .seconds(60)))
        #expect(breaker.admit(now: .seconds(60)) == .probe)
        #expect(breaker.state == .halfOpen)
        // A second request while the probe is in flight skips the provider.
        if case .rejected = breaker.admit(now: .seconds(60)) {} else { Issue.record("second request should be rejected") }
        #expect(breaker.record(.success, wasProbe: true, now: .seconds(61)) == .closed)
        #expect(breaker.admit(now: .seconds(61)) == .allowed)
    }

    @Test func failedProbeReopensForADoubledPeriod() {
        var breaker = CircuitBreaker(configuration: config)
        for _ in 0..<3 { breaker.record(.failure, wasProbe: false, now: .zero) }
        #expect(breaker.admit(now: .seconds(100)) == .probe)
        #expect(breaker.record(.failure, wasProbe: true, now: .seconds(101)) == .open)
        // The first open period is recoveryTimeout (60 s); each failed probe doubles the next.
        #expect(breaker.opensAt == .seconds(101 + 120))
        #expect(breaker.failedProbes == 1)
    }

    @Test func neutralProbeReleasesItsSlot() {
        var breaker = CircuitBreaker(configuration: config)
        for _ in 0..<3 { breaker.record(.failure, wasProbe: false, now: .zero) }
        #expect(breaker.admit(now: .seconds(60)) == .probe)
        breaker.record(.neutral, wasProbe: true, now: .seconds(60))
        #expect(breaker.admit(now: .seconds(60)) == .probe)
    }

    @Test func boundedProbes() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 1, recoveryTimeout: .seconds(1), halfOpenMaxProbes: 2))
        breaker.record(.failure, wasProbe: false, now: .zero)
        #expect(breaker.admit(now: .seconds(1)) == .probe)
        #expect(breaker.admit(now: .seconds(1)) == .probe)
        if case .rejected = breaker.admit(now: .seconds(1)) {} else { Issue.record("third probe should be rejected") }
    }

    @Test func tripExtendsAndNeverShortens() {
        var breaker = CircuitBreaker(configuration: config)
        #expect(breaker.trip(until: .seconds(100)) == .open)
        breaker.trip(until: .seconds(50))
        #expect(breaker.opensAt == .seconds(100))
        breaker.trip(until: .seconds(200))
        #expect(breaker.opensAt == .seconds(200))
    }

    @Test func stragglerFailureWhileOpenExtends() {
        var breaker = CircuitBreaker(configuration: config)
        for _ in 0..<3 { breaker.record(.failure, wasProbe: false, now: .zero) }
        breaker.record(.failure, wasProbe: false, now: .seconds(10))
        #expect(breaker.opensAt == .seconds(70))
    }

    @Test func failureRateOverSlidingWindow() {
        var breaker = CircuitBreaker(
            configuration: .init(failureThreshold: 100, recoveryTimeout: .seconds(30), failureRateThreshold: 0.5, slidingWindow: .seconds(10), minimumCalls: 4)
        )
        breaker.record(.success, wasProbe: false, now: .seconds(1))
        breaker.record(.failure, wasProbe: false, now: .seconds(2))
        breaker.record(.success, wasProbe: false, now: .seconds(3))
        #expect(breaker.state == .closed)  // under minimum calls
        #expect(breaker.record(.failure, wasProbe: false, now: .seconds(4)) == .open)  // 2 of 4 failed
    }

    @Test func oldSamplesLeaveTheWindow() {
        var breaker = CircuitBreaker(
            configuration: .init(failureThreshold: 100, recoveryTimeout: .seconds(30), failureRateThreshold: 0.5, slidingWindow: .seconds(10), minimumCalls: 4)
        )
        for second in 0..<3 { breaker.record(.failure, wasProbe: false, now: .seconds(second)) }
        for second in 20..<25 { breaker.record(.success, wasProbe: false, now: .seconds(second)) }
        breaker.record(.failure, wasProbe: false, now: .seconds(25))
        #expect(breaker.state == .closed)
    }

    @Test func disabledBreakerAlwaysAllows() {
        var breaker = CircuitBreaker(configuration: .disabled)
        for _ in 0..<100 { breaker.record(.failure, wasProbe: false, now: .zero) }
        #expect(breaker.admit(now: .zero) == .allowed)
    }
}
