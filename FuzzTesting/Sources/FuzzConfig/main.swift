import FuzzDriver
// The config loader of the `llm-fallback` command, compiled here from its own sources (the symbolic link
// `Config` points at Sources/llm-fallback/Config): an executable target cannot be imported by another package.

/// The environment `${VAR}` references are expanded from: one key set, one set but empty.
let fuzzEnvironment = ["FUZZ_KEY": "sk-fuzz", "FUZZ_EMPTY": "", "OPENAI_API_KEY": "sk-openai"]

/// Reads the input as an `llm-fallback.yaml` and checks it, as `llm-fallback config validate` and `serve` do.
func fuzzConfig(_ input: UnsafeRawBufferPointer) {
    let text = String(decoding: input, as: UTF8.self)
    do {
        let file = try ConfigFile.parse(text, file: "fuzz.yaml", environment: fuzzEnvironment)
        // What `config validate` prints for a valid file.
        for chain in file.chains {
            _ = chain.providers.map(\.debugDescription)
            _ = "\(chain.configuration)"
        }
    } catch {
        _ = "\(error)"
    }
}

// libFuzzer's driver runs the entry point on every input (build with -sanitize=fuzzer; see ../../README.md).
fuzz { fuzzConfig($0) }
