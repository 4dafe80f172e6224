import AuthCore

/// Access tokens whose signature has been checked, keyed by the token's exact
/// bytes (never by `String`, whose `==` is canonical equivalence: a copy
/// spelled with other code points would hit), with their claims. Only the
/// signature check and the claims' parse are skipped on a hit: expiry,
/// user and session are checked on every call; a key rotation or reload
/// empties it. Bounded: when full, it
/// starts over (a cheap, allocation-free eviction; a miss costs one check).
final class VerifiedTokenCache: @unchecked Sendable {
    /// A token compared and hashed by its UTF-8 bytes, with no copy of them.
    private struct Key: Hashable {
        var token: String

        static func == (lhs: Key, rhs: Key) -> Bool {
            var (left, right) = (lhs.token, rhs.token)
            return left.withUTF8 { left in right.withUTF8 { left.elementsEqual($0) } }
        }

        func hash(into hasher: inout Hasher) {
            var token = token
            token.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    private let lock = ServiceLock()
    private var entries: [Key: JSONObject] = [:]
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func claims(for token: String) -> JSONObject? {
        let key = Key(token: token)
        return lock.withLock { entries[key] }
    }

    func insert(_ token: String, claims: JSONObject) {
        let key = Key(token: token)
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = claims
        }
    }

    func removeAll() {
        lock.withLock { entries.removeAll() }
    }
}
