import Foundation

/// A value under an `NSLock` (a pthread mutex, which ThreadSanitizer sees;
/// `Synchronization.Mutex`'s contended path it does not).
final class Guarded<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
