import AuthCore
import NIOConcurrencyHelpers

/// Access tokens whose signature has been checked, keyed by the whole token,
/// with their claims. Only the signature check is skipped on a hit: expiry,
/// user and session are checked on every call. Bounded: when full, it
/// starts over (a cheap, allocation-free eviction; a miss costs one check).
final class VerifiedTokenCache: @unchecked Sendable {
    private let lock = NIOLock()
    private var entries: [String: JSONObject] = [:]
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func claims(for token: String) -> JSONObject? {
        lock.withLock { entries[token] }
    }

    func insert(_ token: String, claims: JSONObject) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = claims
        }
    }

    func removeAll() {
        lock.withLock { entries.removeAll() }
    }

    var count: Int { lock.withLock { entries.count } }
}
