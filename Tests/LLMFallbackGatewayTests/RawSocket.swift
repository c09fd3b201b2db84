import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#if canImport(SwiftOverlayShims)
// timeval's definition is found through this module in some builds (the compiler's batches decide).
import SwiftOverlayShims
#endif
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking TCP client on a raw socket, for clients no HTTP library imitates: one that trickles its request a byte
/// at a time, one that sends a whole body before it reads. Every call has a deadline (socket timeouts), and the
/// blocking calls run on threads of their own, never on Swift Concurrency's few (nor Dispatch's, as few).
final class RawSocket: @unchecked Sendable {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Connects to `127.0.0.1:port`; sends and receives give up after `timeout`.
    static func connect(port: Int, timeout: Duration = .seconds(15)) async throws -> RawSocket {
        try await blockingThrowing {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw GatewayTestError("socket() failed: \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(fd)
                throw GatewayTestError("connect() failed: \(errno)")
            }
            var time = timeval()
            time.tv_sec = Int(timeout.components.seconds)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
            return RawSocket(fd: fd)
        }
    }

    /// Sends all of `bytes`.
    ///
    /// - Returns: `false` when the peer closed or reset the connection (or the send timed out) first.
    func send(_ bytes: [UInt8]) async -> Bool {
        await Self.blocking { self.sendNow(bytes) }
    }

    /// Sends `text`.
    func send(_ text: String) async -> Bool {
        await send(Array(text.utf8))
    }

    /// Sends `bytes` one at a time, `interval` apart, until the server closes the connection or all are sent.
    ///
    /// - Returns: How long after the first byte the server closed the connection, or `nil` if it never did.
    func trickle(_ bytes: [UInt8], interval: Duration) async -> Duration? {
        await Self.blocking {
            let start = ContinuousClock.now
            let pause = useconds_t(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
            for byte in bytes {
                if self.peerClosed() || !self.sendNow([byte]) { return ContinuousClock.now - start }
                usleep(pause)
            }
            return self.peerClosed() ? ContinuousClock.now - start : nil
        }
    }

    /// Sends `count` chunks of `size` bytes, `interval` apart, until the server closes or resets the connection.
    ///
    /// - Returns: How long after the first chunk the connection ended, or `nil` if every chunk was sent.
    func trickleChunks(count: Int, size: Int, interval: Duration) async -> Duration? {
        await Self.blocking {
            let start = ContinuousClock.now
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: size)
            let pause = useconds_t(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
            for _ in 0..<count {
                if self.peerClosed() || !self.sendNow(chunk) { return ContinuousClock.now - start }
                usleep(pause)
            }
            return nil
        }
    }

    /// A socket bound to a free loopback port without listening: connecting to the port is refused, and no other
    /// server can take the port while the socket lives (a released port could go to a test's gateway).
    static func boundWithoutListening() async throws -> (socket: RawSocket, port: Int) {
        try await blockingThrowing {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw GatewayTestError("socket() failed: \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
                }
            }
            guard bound else {
                close(fd)
                throw GatewayTestError("bind() failed: \(errno)")
            }
            return (RawSocket(fd: fd), Int(UInt16(bigEndian: address.sin_port)))
        }
    }

    /// Reads until the server closes the connection (or the receive timeout passes).
    ///
    /// - Returns: The bytes read, and whether the connection was closed cleanly (rather than timed out or reset).
    func readToEnd() async -> (text: String, closed: Bool) {
        await Self.blocking {
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = recv(self.fd, &buffer, buffer.count, 0)
                if count > 0 {
                    data.append(contentsOf: buffer[0..<count])
                } else {
                    return (String(decoding: data, as: UTF8.self), count == 0)
                }
            }
        }
    }

    private func sendNow(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Whether the server has closed its side: a read that does not wait sees the end of the stream (or an error).
    private func peerClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // Anything the server sent before closing (an error answer) is read and kept for `received`.
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                received.append(contentsOf: buffer[0..<count])
                continue
            }
            if count == 0 { return true }
            let error = errno
            return error == ECONNRESET || error == EPIPE || error == ENOTCONN
        }
    }

    /// What the server sent while bytes were trickled (an error answer before it closed, say).
    private(set) var received: [UInt8] = []

    /// Runs `body` on a Dispatch thread.
    private static func blockingThrowing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }
}
