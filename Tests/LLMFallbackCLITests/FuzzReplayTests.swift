import Foundation
import LLMFallback
import Testing

@testable import llm_fallback

/// The config loader's fuzz target without the fuzzer: every input kept under `FuzzTesting/FailCases/FuzzConfig`
/// (a crash found once stays fixed) and the seed corpus, parsed as `FuzzConfig` parses them.
@Suite("Config fuzz inputs replayed")
struct ConfigFuzzReplayTests {
    static let fuzzTesting = CommandRunner.packageRoot.appendingPathComponent("FuzzTesting")

    static func inputs(in folder: String) -> [URL] {
        let directory = fuzzTesting.appendingPathComponent(folder).appendingPathComponent("FuzzConfig")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { directory.appendingPathComponent($0) }
    }

    @Test("every kept crash input and every seed parses to a file or a typed error, without a trap")
    func replay() throws {
        let seeds = Self.inputs(in: "Corpus")
        #expect(!seeds.isEmpty, "the seed corpus is missing: the replay would prove nothing")
        let environment = ["FUZZ_KEY": "sk-fuzz", "FUZZ_EMPTY": "", "OPENAI_API_KEY": "sk-openai"]
        var parsed = 0
        // The seeds are mostly the test fixtures' mistakes; one valid file shows the whole path runs.
        let valid = "chains:\n  default:\n    providers:\n      - { name: openai, model: gpt-4o, api_key: \"${FUZZ_KEY}\" }\n"
        let texts = try (Self.inputs(in: "FailCases") + seeds).map { String(decoding: try Data(contentsOf: $0), as: UTF8.self) }
        for text in texts + [valid] {
            do {
                let file = try ConfigFile.parse(text, file: "fuzz.yaml", environment: environment)
                for chain in file.chains {
                    let described = chain.providers.map(\.debugDescription).joined()
                    #expect(!described.contains("sk-fuzz") && !described.contains("sk-openai"), "a key in a description")
                }
                parsed += 1
            } catch {
                #expect(!"\(error)".isEmpty)
            }
        }
        #expect(parsed > 0, "no seed is a valid file")
    }
}
