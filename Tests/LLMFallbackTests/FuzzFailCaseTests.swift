import Foundation
@_spi(Fuzzing) import LLMFallback
import Testing

/// One input a fuzz target crashed on, kept under `FuzzTesting/FailCases/<target>/`.
struct FuzzFailCase: Sendable, CustomTestStringConvertible {
    var target: String
    var name: String
    var bytes: [UInt8]
    /// Why the case still fails, while its fault is open (from `FuzzTesting/FailCases/OPEN`).
    var openReason: String?

    var testDescription: String { "\(target)/\(name)" }
}

enum FuzzFailCases {
    /// `FuzzTesting/FailCases`, beside the package's `Tests`.
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("FuzzTesting")
        .appendingPathComponent("FailCases")

    /// The targets replayed elsewhere: the gateway's (Tests/LLMFallbackGatewayTests/FuzzReplayTests.swift) and the
    /// config loader's (Tests/LLMFallbackCLITests/FuzzReplayTests.swift) are not this module's; the HTTP client's
    /// target drives an `EmbeddedChannel` of its own and has kept no crash (a case kept for it would be replayed by
    /// running the target on it: `FuzzTesting/.build/debug/FuzzHTTPClient FailCases/FuzzHTTPClient/*`).
    static let replayedElsewhere: Set<String> = ["FuzzGatewayRequest", "FuzzConfig", "FuzzHTTPClient"]

    /// `FailCases/OPEN`: one `target/name: reason` line per kept case whose fault is not fixed yet.
    static func openCases() -> [String: String] {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("OPEN"), encoding: .utf8) else { return [:] }
        var open: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            open[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return open
    }

    /// Every kept case of the targets whose entry point is in the library.
    static func all() -> [FuzzFailCase] {
        let files = FileManager.default
        let open = openCases()
        var cases: [FuzzFailCase] = []
        for target in FuzzEntryPoints.targets.keys.sorted() {
            let folder = directory.appendingPathComponent(target)
            guard let names = try? files.contentsOfDirectory(atPath: folder.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                guard let data = files.contents(atPath: folder.appendingPathComponent(name).path) else { continue }
                cases.append(FuzzFailCase(target: target, name: name, bytes: Array(data), openReason: open["\(target)/\(name)"]))
            }
        }
        return cases
    }
}

/// Replays every input a fuzz target crashed on through the same entry point, without the fuzzer, each in a
/// process of its own (an exit test), so that a case that still traps fails its test instead of ending the run.
///
/// A case whose fault is still open is listed in `FuzzTesting/FailCases/OPEN` and expected to fail (a known
/// issue); once the fault is fixed the known issue is missing, the test fails, and the line comes out of `OPEN`.
@Suite("Fuzz fail cases")
struct FuzzFailCaseTests {
    @Test("the kept fail cases are found, and each names a fuzz target")
    func failCasesAreFound() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: FuzzFailCases.directory.path)
            .filter { !$0.hasPrefix(".") && $0 != "OPEN" && $0 != "README.md" }
        for folder in folders {
            #expect(
                FuzzEntryPoints.targets[folder] != nil || FuzzFailCases.replayedElsewhere.contains(folder),
                "FailCases/\(folder) is not a fuzz target"
            )
        }
        let cases = FuzzFailCases.all()
        for key in FuzzFailCases.openCases().keys {
            let target = String(key.prefix { $0 != "/" })
            guard !FuzzFailCases.replayedElsewhere.contains(target) else { continue }
            #expect(cases.contains { "\($0.target)/\($0.name)" == key }, "OPEN lists \(key), which is not kept")
        }
    }

    @Test("a kept fuzz input runs through its entry point without a trap", arguments: FuzzFailCases.all())
    func replay(_ failCase: FuzzFailCase) async {
        if let reason = failCase.openReason {
            await withKnownIssue("open: \(reason)") {
                await Self.expectCleanRun(failCase)
            }
        } else {
            // A fixed fault runs in this process: a child process per case (a whole test binary starting) stalled
            // the rest of a parallel run on a 2-core machine; a regression that traps still fails the run.
            failCase.bytes.withUnsafeBytes { FuzzEntryPoints.targets[failCase.target]!($0) }
        }
    }

    /// Runs the case in a child process, which must exit normally.
    private static func expectCleanRun(_ failCase: FuzzFailCase) async {
        await #expect(processExitsWith: .success) {
            [target = failCase.target as String, bytes = failCase.bytes as [UInt8]] in
            bytes.withUnsafeBytes { FuzzEntryPoints.targets[target]!($0) }
        }
    }
}
