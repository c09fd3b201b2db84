// The chain's overhead over a direct call, as a plain executable for profilers (perf, heaptrack, callgrind) and a
// quick A/B between two builds: rounds of direct calls and chain calls interleaved in one process, each round's
// p50 and CPU time per call, and the median ratios chain/direct over the rounds.
//
// Usage: ChainProfile [compare|direct|chain|failover] [calls per round] [rounds]
//   compare   alternate direct and chain rounds (the default) and print each round and the median ratios of the
//             p50 wall time and of the CPU time per call
//   compare-bounded  as compare, with a third path between them: the direct call with its body read as the chain
//             reads it on AsyncHTTPClientTransport (a task of its own), to tell the price of that bound from the
//             chain's bookkeeping
//   direct    only direct calls (for a profiler); bounded, chain and failover likewise
// The mock server is LLMFB_BENCH_MOCK_URL's (BenchMockServer) or, without it, one started in this process.
// LLMFB_BENCH_TRANSPORT=nio measures on NIOHTTPClientTransport (the gateway's) instead of AsyncHTTPClientTransport.
import BenchmarkFixtures
import Foundation
import LLMFallback

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "compare"
let calls = arguments.count > 2 ? Int(arguments[2]) ?? 1000 : 1000
let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 10 : 10

let fixture = try await NetworkFixture.make(
    transport: ProcessInfo.processInfo.environment["LLMFB_BENCH_TRANSPORT"] == "nio" ? NIOHTTPClientTransport() : AsyncHTTPClientTransport())
let clock = ContinuousClock()

/// One round of `count` calls of `path`: the median wall time per call and the process's CPU time (every thread's,
/// user and system) per call, in µs. The CPU time is the steadier figure on a machine shared with other work.
func run(_ path: String, _ count: Int) async throws -> (p50: Double, cpu: Double) {
    var times: [Double] = []
    times.reserveCapacity(count)
    let cpuBefore = cpuMicroseconds()
    for _ in 0..<count {
        let start = clock.now
        switch path {
        case "direct": _ = try await fixture.direct()
        case "bounded": _ = try await fixture.boundedDirect()
        case "chain": _ = try await fixture.chain()
        case "failover": _ = try await fixture.failover()
        default: fatalError("unknown path \(path)")
        }
        times.append(micros(clock.now - start))
    }
    let cpu = (cpuMicroseconds() - cpuBefore) / Double(count)
    times.sort()
    return (times[times.count / 2], cpu)
}

func micros(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
}

func cpuMicroseconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func us(_ time: timeval) -> Double { Double(time.tv_sec) * 1e6 + Double(time.tv_usec) }
    return us(usage.ru_utime) + us(usage.ru_stime)
}

func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

switch mode {
case "compare", "compare-bounded":
    let paths = mode == "compare" ? ["direct", "chain"] : ["direct", "bounded", "chain"]
    for path in paths { _ = try await run(path, 200) }
    // Each ratio: (numerator, denominator).
    let pairs = mode == "compare" ? [("chain", "direct")] : [("bounded", "direct"), ("chain", "bounded"), ("chain", "direct")]
    var wallRatios: [String: [Double]] = [:]
    var cpuRatios: [String: [Double]] = [:]
    for round in 0..<rounds {
        // Rotate which goes first, so a drift in the machine's load does not favour one.
        let order = Array(paths[(round % paths.count)...] + paths[..<(round % paths.count)])
        var results: [String: (p50: Double, cpu: Double)] = [:]
        for path in order { results[path] = try await run(path, calls) }
        var line = "round \(round):"
        for path in paths { line += " \(path) p50 \(format(results[path]!.p50)) µs, CPU \(format(results[path]!.cpu)) µs;" }
        for (top, bottom) in pairs {
            let key = "\(top)/\(bottom)"
            let wall = results[top]!.p50 / results[bottom]!.p50
            let cpu = results[top]!.cpu / results[bottom]!.cpu
            wallRatios[key, default: []].append(wall)
            cpuRatios[key, default: []].append(cpu)
            line += " \(key) \(format(wall, 3)) (CPU \(format(cpu, 3)))"
        }
        print(line)
    }
    func summary(_ ratios: [Double]) -> String {
        let sorted = ratios.sorted()
        return "median \(format(sorted[sorted.count / 2], 3)) (min \(format(sorted.first!, 3)), max \(format(sorted.last!, 3)))"
    }
    for (top, bottom) in pairs {
        let key = "\(top)/\(bottom)"
        print("\(key) p50 wall time: \(summary(wallRatios[key]!)); CPU time: \(summary(cpuRatios[key]!))")
    }
default:
    _ = try await run(mode, 200)
    let result = try await run(mode, calls * rounds)
    print("\(mode): p50 \(format(result.p50)) µs, CPU \(format(result.cpu)) µs per call")
}
