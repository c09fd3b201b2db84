import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for one test: `initdb` in a temporary directory, `pg_ctl` on a free loopback port,
/// run as the `postgres` user (PostgreSQL refuses to run as root, and the tests run as root in CI). Every wait has a
/// deadline; ``stop()`` and ``destroy()`` end it.
///
/// A target of its own, so the store's tests and the two-gateway test of the command share it.
public final class TestPostgres: @unchecked Sendable {
    /// Debian's server binaries (`apt-get install postgresql`), newest version first.
    public static let binaries: String? = {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        return nil
    }()

    /// The user the server runs as, when the tests run as root.
    public static let serverUser: String? = getuid() == 0 ? "postgres" : nil

    /// Whether the tests that need PostgreSQL can run (initdb found; as root, a `postgres` user and `runuser`).
    public static let isAvailable: Bool = {
        guard binaries != nil else { return false }
        if getuid() == 0 { return getpwnam("postgres") != nil && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") }
        return true
    }()

    public static let skipReason = "PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin (apt-get install postgresql), or there is no postgres user to run it as"

    /// The cluster's directory (data, log, socket).
    public let directory: String
    /// The port it listens on (loopback only).
    public let port: Int
    /// A URL for the cluster (trust authentication: no password is asked for).
    public var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// The URL with `password` in it: the server asks for none, so a test can check that it never shows.
    public func url(password: String) -> String {
        "postgres://postgres:\(password)@127.0.0.1:\(port)/postgres?sslmode=disable"
    }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// Creates and starts a cluster.
    public static func start() throws -> TestPostgres {
        guard let binaries else { throw TestPostgresError("initdb not found") }
        var template = Array("/tmp/llm-fallback-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestPostgresError("mkdtemp failed") }
        let directory = String(cString: made)
        if let user = serverUser, let entry = getpwnam(user) {
            chown(directory, entry.pointee.pw_uid, entry.pointee.pw_gid)
        }
        let initializer = TestPostgres(directory: directory, port: 0)
        try initializer.run("\(binaries)/initdb", ["-D", "\(directory)/data", "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"], deadline: .seconds(60))
        // The free port is found by binding port 0 and closing it: until the server binds it, another process's
        // outgoing connection can take it as its local port (the suite opens thousands on loopback in parallel),
        // and the server then exits at once ("could not bind"). A fresh port, a few times, is the cure.
        var failures: [String] = []
        for _ in 0..<3 {
            let server = TestPostgres(directory: directory, port: try freePort())
            do {
                try server.startServer()
                return server
            } catch {
                let log = (try? String(contentsOfFile: "\(directory)/log", encoding: .utf8)) ?? ""
                failures.append("port \(server.port): \(error); log: \(log.suffix(400))")
            }
        }
        initializer.destroy()
        throw TestPostgresError("the server did not start: \(failures.joined(separator: " | "))")
    }

    /// Starts the server (again) on the same port.
    public func startServer() throws {
        try run(
            "\(Self.binaries!)/pg_ctl",
            ["-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "30",
             "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
            deadline: .seconds(40)
        )
    }

    /// Stops the server at once (`-m fast`: clients are disconnected).
    public func stop() throws {
        try run("\(Self.binaries!)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "-t", "30", "stop"], deadline: .seconds(40))
    }

    /// Stops the server if it runs and removes its directory.
    public func destroy() {
        try? run("\(Self.binaries!)/pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "-t", "30", "stop"], deadline: .seconds(40), quiet: true)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a tool to its end with posix_spawn and waitpid (no Foundation `Process`, whose termination is
    /// noticed on Dispatch's pool, which busy tests can starve), its output in a file, within `deadline`.
    private func run(_ tool: String, _ arguments: [String], deadline: Duration, quiet: Bool = false) throws {
        let argv = (Self.serverUser.map { ["/usr/sbin/runuser", "-u", $0, "--", tool] } ?? [tool]) + arguments
        let outputPath = "\(directory)/tool-output"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else { throw TestPostgresError("could not start \(argv[0]): \(spawned)") }
        let end = ContinuousClock.now + deadline
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 { throw TestPostgresError("waitpid failed") }
            if ContinuousClock.now > end {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw TestPostgresError("\((tool as NSString).lastPathComponent) did not finish within \(deadline)")
            }
            usleep(10_000)
        }
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard exitCode == 0 else {
            if quiet { return }
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw TestPostgresError("\((tool as NSString).lastPathComponent) failed (\(exitCode)): \(text.suffix(2000))")
        }
    }

    private static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw TestPostgresError("socket failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0 else { throw TestPostgresError("bind failed") }
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0 else { throw TestPostgresError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A failure of the helper (or a wait that timed out).
public struct TestPostgresError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How much slower than usual the run may be: `LLM_FALLBACK_TEST_TIME_SCALE` (1 by default; `scripts/sanitize.sh`
/// sets 5). Deadlines of waits are multiplied by it; no assertion about a result changes.
public enum TestTime {
    public static let scale: Int = {
        guard let text = ProcessInfo.processInfo.environment["LLM_FALLBACK_TEST_TIME_SCALE"],
            let value = Int(text), (1...100).contains(value)
        else { return 1 }
        return value
    }()

    /// `deadline`, times ``scale``.
    public static func scaled(_ deadline: Duration) -> Duration { deadline * scale }
}

/// Polls `condition` until it holds, failing after `limit` (times ``TestTime/scale``): no test sleeps to wait for
/// a state.
public func eventually(_ limit: Duration = .seconds(5), _ what: String, _ condition: () async throws -> Bool) async throws {
    let limit = TestTime.scaled(limit)
    let end = ContinuousClock.now + limit
    while true {
        if try await condition() { return }
        if ContinuousClock.now > end { throw TestPostgresError("timed out after \(limit): \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}
