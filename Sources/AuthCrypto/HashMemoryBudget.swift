import Glibc

/// The memory argon2id hashes may hold at once, process-wide
/// (`max_hash_memory_mib`). A hash reserves its `m` before it runs and waits
/// while others hold the rest, so no mix of configured and stored
/// parameters, scheme switches or reloads can make the hashing workers hold
/// more; a hash that needs more than the whole budget is refused.
public final class HashMemoryBudget: @unchecked Sendable {
    public struct Exceeded: Error, CustomStringConvertible {
        public let needKiB: Int
        public let limitKiB: Int
        public var description: String {
            "an argon2id hash needs \(needKiB) KiB, more than max_hash_memory_mib allows (\(limitKiB) KiB)"
        }
    }

    private let condition = Condition()
    private var limitKiB: Int
    private var heldKiB = 0

    public init(limitKiB: Int) {
        self.limitKiB = limitKiB
    }

    /// A pthread mutex with its condition variable (no Foundation here).
    private final class Condition {
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let variable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

        init() {
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(variable, nil)
        }

        deinit {
            pthread_cond_destroy(variable)
            pthread_mutex_destroy(mutex)
            variable.deallocate()
            mutex.deallocate()
        }

        func lock() { pthread_mutex_lock(mutex) }
        func unlock() { pthread_mutex_unlock(mutex) }
        func wait() { pthread_cond_wait(variable, mutex) }
        func broadcast() { pthread_cond_broadcast(variable) }
    }

    /// The budget every argon2id hash of this process reserves from.
    public static let shared = HashMemoryBudget(limitKiB: 512 * 1024)

    /// A new limit (start and reload); hashes running keep what they hold.
    public func setLimit(kib: Int) {
        condition.lock()
        limitKiB = kib
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body` holding `kib` of the budget, waiting until it is free.
    public func withReservation<T>(kib: Int, _ body: () throws -> T) throws -> T {
        condition.lock()
        while heldKiB + kib > limitKiB {
            guard kib <= limitKiB else {
                condition.unlock()
                throw Exceeded(needKiB: kib, limitKiB: limitKiB)
            }
            condition.wait()
        }
        heldKiB += kib
        condition.unlock()
        defer {
            condition.lock()
            heldKiB -= kib
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }

    /// Whether a hash needing `kib` can ever run under the current limit.
    public func admits(kib: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return kib <= limitKiB
    }

    /// KiB held by hashes running now.
    public var held: Int {
        condition.lock()
        defer { condition.unlock() }
        return heldKiB
    }
}
