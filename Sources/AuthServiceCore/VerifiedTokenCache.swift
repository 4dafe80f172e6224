import AuthCore

/// Access tokens whose signature has been checked, keyed by the token's exact
/// bytes (never by `String`, whose `==` is canonical equivalence: a copy
/// spelled with other code points would hit), with their claims. Only the signature check is skipped on a hit: expiry,
/// user and session are checked on every call. Bounded: when full, it
/// starts over (a cheap, allocation-free eviction; a miss costs one check).
final class VerifiedTokenCache: @unchecked Sendable {
    private let lock = ServiceLock()
    private var entries: [[UInt8]: JSONObject] = [:]
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func claims(for token: String) -> JSONObject? {
        let key = Array(token.utf8)
        return lock.withLock { entries[key] }
    }

    func insert(_ token: String, claims: JSONObject) {
        let key = Array(token.utf8)
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = claims
        }
    }

    func removeAll() {
        lock.withLock { entries.removeAll() }
    }
}
