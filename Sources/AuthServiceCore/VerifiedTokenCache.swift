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
    /// Counts `removeAll`s: a check that began before one (with the keys
    /// of then) must not insert after it.
    private var emptied = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The cached claims of `token`, or the count `insert` is to be given
    /// after checking it: one lock for both, and read before the keys the
    /// check uses.
    func lookup(_ token: String) -> Result<JSONObject, Miss> {
        let key = Key(token: token)
        return lock.withLock { entries[key].map { .success($0) } ?? .failure(Miss(generation: emptied)) }
    }

    struct Miss: Error {
        let generation: Int
    }

    /// Caches `claims`, unless the cache was emptied (a key reload or
    /// rotation) since `generation` was read: the token was then checked
    /// with keys that may be gone.
    func insert(_ token: String, claims: JSONObject, generation: Int) {
        let key = Key(token: token)
        lock.withLock {
            guard generation == emptied else { return }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = claims
        }
    }

    func removeAll() {
        lock.withLock {
            emptied += 1
            entries.removeAll()
        }
    }
}
