import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells ThreadSanitizer about the package's locks when, and only when, it is running.
///
/// `Synchronization.Mutex` locks with raw futex calls on Linux, which ThreadSanitizer does not intercept: under
/// `--sanitize=thread` every access made under such a lock is reported as a race (49 false reports on 0369847).
/// ``Mutex/locked(_:)`` marks each critical section with `__tsan_acquire` and `__tsan_release` (on the guarded
/// type), so the sanitizer sees the happens-before edges the lock provides. The hooks are looked up once;
/// without the sanitizer they are `nil` and a lock costs one more predictable branch.
@usableFromInline
enum SanitizerHooks {
    @usableFromInline
    typealias Hook = @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// `__tsan_acquire`, when ThreadSanitizer's runtime is in the process.
    @usableFromInline
    static let acquire: Hook? = lookup("__tsan_acquire")
    /// `__tsan_release`, when ThreadSanitizer's runtime is in the process.
    @usableFromInline
    static let release: Hook? = lookup("__tsan_release")

    static func lookup(_ name: String) -> Hook? {
        #if os(Linux)
        // RTLD_DEFAULT: the symbol in any object already loaded (the sanitizer's runtime exports its interface).
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: Hook.self)
        #else
        return nil
        #endif
    }
}

extension Mutex where Value: ~Copyable {
    /// `withLock`, with the critical section made visible to ThreadSanitizer (see ``SanitizerHooks``). Use it for
    /// every lock of the package.
    @inlinable
    package borrowing func locked<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try withLock { (value: inout sending Value) throws(E) -> sending Result in
            guard let acquire = SanitizerHooks.acquire, let release = SanitizerHooks.release else {
                return try body(&value)
            }
            // The sanitizer's synchronisation object is the guarded type's metadata: taking the guarded value's own
            // address would be an access the sanitizer sees before the annotation. Critical sections of two locks
            // guarding the same type are ordered with each other too (coarser than the locks, never finer).
            let address = unsafeBitCast(Value.self, to: UnsafeMutableRawPointer.self)
            acquire(address)
            defer { release(address) }
            return try body(&value)
        }
    }
}
