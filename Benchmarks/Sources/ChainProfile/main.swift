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
//   paired    calls of two paths alternated one by one (A B B A ...), so both meet the same machine: per block of
//             calls, the ratio of the p50 wall times and of the CPU time (the process's, every thread's), and the
//             median and quartiles of those over the blocks. The paths are the fourth argument, `chain,direct` by
//             default; `direct,direct` (an A/A run) shows what the measurement itself spreads.
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
        try await call(path)
        times.append(micros(clock.now - start))
    }
    let cpu = (cpuMicroseconds() - cpuBefore) / Double(count)
    times.sort()
    return (times[times.count / 2], cpu)
}

func call(_ path: String) async throws {
    switch path {
    case "direct": _ = try await fixture.direct()
    case "bounded": _ = try await fixture.boundedDirect()
    case "chain": _ = try await fixture.chain()
    case "failover": _ = try await fixture.failover()
    default: fatalError("unknown path \(path)")
    }
}

/// The process's CPU time (every thread's), in µs, at nanosecond resolution: fine enough for one call.
func processCPUMicroseconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) * 1e6 + Double(time.tv_nsec) / 1e3
}

/// The process's system CPU time, in µs (getrusage's split of the total into user and system time).
func systemCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_stime.tv_usec)
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
case "paired":
    let paths = arguments.count > 4 ? arguments[4].split(separator: ",").map(String.init) : ["chain", "direct"]
    precondition(paths.count == 2, "paired takes two paths, as in chain,direct")
    for path in Set(paths) { _ = try await run(path, 200) }
    var wallRatios: [Double] = []
    var cpuRatios: [Double] = []
    var pooled: [[Double]] = [[], []]
    var pooledCPU = [0.0, 0.0]
    var systemCPU = [0.0, 0.0]
    for block in 0..<rounds {
        var times: [[Double]] = [[], []]
        var cpu = [0.0, 0.0]
        for index in 0..<(2 * calls) {
            // A B B A: each path goes first in half the pairs.
            let side = (index % 2) ^ ((index / 2) % 2)
            let cpuBefore = processCPUMicroseconds()
            let systemBefore = systemCPUMicroseconds()
            let start = clock.now
            try await call(paths[side])
            times[side].append(micros(clock.now - start))
            cpu[side] += processCPUMicroseconds() - cpuBefore
            systemCPU[side] += systemCPUMicroseconds() - systemBefore
        }
        for side in 0..<2 {
            pooled[side] += times[side]
            pooledCPU[side] += cpu[side]
            times[side].sort()
        }
        let wall = times[0][calls / 2] / times[1][calls / 2]
        wallRatios.append(wall)
        cpuRatios.append(cpu[0] / cpu[1])
        print(
            "block \(block): \(paths[0]) p50 \(format(times[0][calls / 2])) µs, CPU \(format(cpu[0] / Double(calls))) µs;"
                + " \(paths[1]) p50 \(format(times[1][calls / 2])) µs, CPU \(format(cpu[1] / Double(calls))) µs;"
                + " ratio \(format(wall, 3)) (CPU \(format(cpu[0] / cpu[1], 3)))")
    }
    func quartiles(_ ratios: [Double]) -> String {
        let sorted = ratios.sorted()
        let at = { (fraction: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))] }
        return "median \(format(at(0.5), 3)) (quartiles \(format(at(0.25), 3))–\(format(at(0.75), 3)))"
    }
    for side in 0..<2 { pooled[side].sort() }
    let pooledWall = pooled[0][pooled[0].count / 2] / pooled[1][pooled[1].count / 2]
    print("\(paths[0])/\(paths[1]) over \(rounds) blocks of \(calls) pairs: p50 wall time \(quartiles(wallRatios)); CPU time \(quartiles(cpuRatios))")
    let pairs = Double(rounds * calls)
    print(
        "CPU per call, user + system (getrusage's split): \(paths[0]) \(format((pooledCPU[0] - systemCPU[0]) / pairs)) + \(format(systemCPU[0] / pairs)) µs,"
            + " \(paths[1]) \(format((pooledCPU[1] - systemCPU[1]) / pairs)) + \(format(systemCPU[1] / pairs)) µs")
    print("\(paths[0])/\(paths[1]) pooled over all \(rounds * calls) pairs: p50 wall time \(format(pooledWall, 3)); CPU time \(format(pooledCPU[0] / pooledCPU[1], 3))")
default:
    _ = try await run(mode, 200)
    let result = try await run(mode, calls * rounds)
    print("\(mode): p50 \(format(result.p50)) µs, CPU \(format(result.cpu)) µs per call")
}
