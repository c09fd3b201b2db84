import Foundation
@_spi(Fuzzing) import LLMFallbackGateway
import Testing

/// The gateway's fuzz target without the fuzzer: every input kept under `FuzzTesting/FailCases/FuzzGatewayRequest`
/// (a crash found once stays fixed) and the seed corpus run through the same entry point as `FuzzGatewayRequest`.
@Suite("Gateway fuzz inputs replayed")
struct GatewayFuzzReplayTests {
    static let fuzzTesting = packageRoot.appendingPathComponent("FuzzTesting")

    /// The files under `FuzzTesting/<folder>/FuzzGatewayRequest`, sorted (none when the folder does not exist).
    static func inputs(in folder: String) -> [URL] {
        let directory = fuzzTesting.appendingPathComponent(folder).appendingPathComponent("FuzzGatewayRequest")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { directory.appendingPathComponent($0) }
    }

    @Test("every kept crash input and every seed runs through the entry point without a trap")
    func replay() throws {
        let entry = try #require(GatewayFuzzEntryPoints.targets["FuzzGatewayRequest"])
        let seeds = Self.inputs(in: "Corpus")
        #expect(!seeds.isEmpty, "the seed corpus is missing: the replay would prove nothing")
        for url in Self.inputs(in: "FailCases") + seeds {
            let bytes = [UInt8](try Data(contentsOf: url))
            bytes.withUnsafeBytes { entry($0) }
        }
    }
}
