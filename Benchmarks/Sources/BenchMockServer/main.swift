// A MockLLMServer in a process of its own, scripted for the benchmarks, so that what the benchmarks measure (time,
// allocations) is the client's alone.
//
// Prints `PORT <port>` on its first line, serves until its standard input closes (scripts/bench.sh holds it open
// for the run), then prints on standard error how many requests and connections it saw, which tells whether the
// client kept its connections alive. It ends by itself after an hour at the latest.
import BenchmarkFixtures
import LLMFallbackTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let server = try await MockLLMServer.start(host: "127.0.0.1", port: 0)
MockEndpoint.configure(server)
writeLine("PORT \(server.port)", to: 1)
alarm(3600)
while readLine() != nil {}
let summary = "mock server: \(server.requests.count) requests on \(server.connectionsAccepted) connections, "
    + "\(server.abandonedRequests) abandoned by the client"
writeLine(summary, to: 2)
try await server.shutdown()

/// Writes `text` and a line feed to the file descriptor `fd`, unbuffered.
func writeLine(_ text: String, to fd: Int32) {
    let bytes = Array((text + "\n").utf8)
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
