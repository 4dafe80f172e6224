import AuthCrypto

/// An HS256 signing key with its `kid` and lifetime. The kid is derived
/// from the key (a domain-separated, truncated SHA-256), so the same secret
/// has the same kid on every start and the kid reveals nothing usable.
public final class SigningKey: Sendable {
    public let kid: String
    public let hmac: HMACKey
    /// When this key stopped signing new tokens (Unix seconds), if it has.
    public let retiredAt: Int64?

    public init(secret: [UInt8], retiredAt: Int64? = nil) {
        self.hmac = HMACKey(bytes: secret)
        self.kid = SigningKey.kid(for: secret)
        self.retiredAt = retiredAt
    }

    private init(kid: String, hmac: HMACKey, retiredAt: Int64?) {
        self.kid = kid
        self.hmac = hmac
        self.retiredAt = retiredAt
    }

    public func retired(at time: Int64) -> SigningKey {
        SigningKey(kid: kid, hmac: hmac, retiredAt: time)
    }

    public static func kid(for secret: [UInt8]) -> String {
        let digest = Digest.sha256(Array("authd-kid-v1:".utf8) + secret)
        return Base64URL.encode(digest.prefix(9))
    }
}

/// The keys that may verify one kind of token, and the one that signs.
public struct KeySet: Sendable {
    public let current: SigningKey
    private let byKid: [String: SigningKey]

    public init(current: SigningKey, older: [SigningKey] = []) {
        self.current = current
        var byKid: [String: SigningKey] = [:]
        for key in older { byKid[key.kid] = key }
        byKid[current.kid] = current
        self.byKid = byKid
    }

    public func key(for kid: String) -> SigningKey? { byKid[kid] }

    public var all: [SigningKey] { Array(byKid.values) }
}
