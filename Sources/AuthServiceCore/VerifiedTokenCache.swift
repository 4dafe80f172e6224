import AuthCore
import Glibc

/// Access tokens whose signature and claims have been checked, keyed by the
/// token's exact bytes (never by `String`, whose `==` is canonical
/// equivalence: a copy spelled with other code points would hit). A hit
/// skips the signature check, the claims' parse and their checks but the
/// times: expiry, user and session are checked on every call; a key
/// rotation or reload empties it, and an entry checked under another
/// issuer or audience is not used. Bounded: when full, it starts over (a
/// cheap, allocation-free eviction; a miss costs one check).
final class VerifiedTokenCache: @unchecked Sendable {
    /// A token compared and hashed by its UTF-8 bytes, with no copy of them.
    private struct Key: Hashable {
        var token: String

        /// `memcmp` (the core's `hasSameUTF8`, for short strings, may not
        /// use libc; a token is hundreds of bytes).
        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.token.utf8.withContiguousStorageIfAvailable { left in
                rhs.token.utf8.withContiguousStorageIfAvailable { right in
                    left.count == right.count
                        && (left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
                } ?? lhs.token.utf8.elementsEqual(rhs.token.utf8)
            } ?? lhs.token.utf8.elementsEqual(rhs.token.utf8)
        }

        /// The last 16 bytes and the length: a token ends in its signature,
        /// bytes no one can choose for a token that gets in (only checked
        /// tokens are stored), and the dictionary's hasher is seeded.
        func hash(into hasher: inout Hasher) {
            let utf8 = token.utf8
            let hashed = utf8.withContiguousStorageIfAvailable { bytes -> Bool in
                let raw = UnsafeRawBufferPointer(bytes)
                hasher.combine(raw.count)
                if raw.count >= 16 {
                    hasher.combine(raw.loadUnaligned(fromByteOffset: raw.count - 16, as: UInt64.self))
                    hasher.combine(raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
                } else {
                    hasher.combine(bytes: raw)
                }
                return true
            }
            if hashed == nil { hasher.combine(token) }
        }
    }

    private let lock = ServiceLock()
    private var entries: [Key: VerifiedAccessToken] = [:]
    private let capacity: Int
    /// Counts `removeAll`s: a check that began before one (with the keys
    /// of then) must not insert after it.
    private var emptied = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The cached check of `token` (nil on a miss), and the count `insert`
    /// is to be given after checking it: one lock for both, and read
    /// before the keys the check uses.
    func lookup(_ token: String) -> (cached: VerifiedAccessToken?, generation: Int) {
        let key = Key(token: token)
        return lock.withLock { (entries[key], emptied) }
    }

    /// Caches `verified` (replacing an entry checked under another policy),
    /// unless the cache was emptied (a key reload or rotation) since
    /// `generation` was read: the token was then checked with keys that
    /// may be gone.
    func insert(_ token: String, _ verified: VerifiedAccessToken, generation: Int) {
        let key = Key(token: token)
        lock.withLock {
            guard generation == emptied else { return }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = verified
        }
    }

    func removeAll() {
        lock.withLock {
            emptied += 1
            entries.removeAll()
        }
    }
}

/// An access token whose signature and claims passed: its claims as
/// signed (with their encoding made once, for `token.verify`'s answer)
/// and as checked.
struct VerifiedAccessToken: Sendable {
    let claimsObject: JSONObject
    let checked: CheckedAccessClaims
}
