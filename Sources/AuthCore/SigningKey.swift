import AuthCrypto

/// How long a retired access key keeps verifying: tokens it signed live at
/// most `retention` seconds (access TTL + clock leeway) after it retired.
public enum KeyRetention {
    public static func stillVerifies(retiredAt: Int64?, retention: Int64, now: Int64) -> Bool {
        guard let retiredAt else { return true }
        return retiredAt.saturatingAdd(retention) >= now
    }
}

/// A token signing key with its `kid` and lifetime: an HS256 secret, or an
/// Ed25519 key pair (EdDSA; the private half only where authd signs).
///
/// An HS256 kid is derived from the secret (a domain-separated, truncated
/// SHA-256), so the same secret has the same kid on every start and the kid
/// reveals nothing usable; an Ed25519 kid is the RFC 7638 JWK thumbprint.
public final class SigningKey: Sendable {
    public enum Material: Sendable {
        case hmac(HMACKey)
        case ed25519(Ed25519PrivateKey)
    }

    public let kid: String
    /// When this key stopped signing new tokens (Unix seconds), if it has.
    public let retiredAt: Int64?
    // Two optionals rather than a stored `Material`: an enum with two class
    // payloads keeps its case in the pointer's spare bits, which leak
    // checkers cannot follow (AddressSanitizer reported the keys as leaked).
    private let hmacKey: HMACKey?
    private let ed25519Key: Ed25519PrivateKey?

    public var material: Material {
        if let hmacKey { return .hmac(hmacKey) }
        return .ed25519(ed25519Key!)
    }

    public init(secret: [UInt8], retiredAt: Int64? = nil) {
        self.hmacKey = HMACKey(bytes: secret)
        self.ed25519Key = nil
        self.kid = SigningKey.kid(for: secret)
        self.retiredAt = retiredAt
    }

    public init(ed25519 key: Ed25519PrivateKey, retiredAt: Int64? = nil) {
        self.hmacKey = nil
        self.ed25519Key = key
        self.kid = key.publicKey.thumbprint
        self.retiredAt = retiredAt
    }

    private init(kid: String, hmacKey: HMACKey?, ed25519Key: Ed25519PrivateKey?, retiredAt: Int64?) {
        self.kid = kid
        self.hmacKey = hmacKey
        self.ed25519Key = ed25519Key
        self.retiredAt = retiredAt
    }

    public func retired(at time: Int64) -> SigningKey {
        SigningKey(kid: kid, hmacKey: hmacKey, ed25519Key: ed25519Key, retiredAt: time)
    }

    /// The JWS `alg` of this key.
    public var algorithm: SigningAlgorithm {
        switch material {
        case .hmac: .hs256
        case .ed25519: .eddsa
        }
    }

    /// The HMAC key of an HS256 key.
    public var hmac: HMACKey {
        guard case .hmac(let key) = material else { preconditionFailure("not an HS256 key") }
        return key
    }

    var signatureLength: Int {
        switch material {
        case .hmac: 32
        case .ed25519: 64
        }
    }

    func sign(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        switch material {
        case .hmac(let key): key.authenticate(input)
        case .ed25519(let key): key.sign(input)
        }
    }

    func isValid(signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        switch material {
        case .hmac(let key): Digest.constantTimeEquals(key.authenticate(input), signature)
        case .ed25519(let key): key.publicKey.isValidSignature(signature, for: input)
        }
    }

    /// The public JWK (RFC 8037) of an Ed25519 key; nil for a secret key.
    public var publicJWK: JSONValue? {
        guard case .ed25519(let key) = material else { return nil }
        return .object([
            "kty": .string("OKP"), "crv": .string("Ed25519"), "x": .string(Base64URL.encode(key.publicKey.bytes)),
            "kid": .string(kid), "alg": .string(SigningAlgorithm.eddsa.rawValue), "use": .string("sig"),
        ])
    }

    public static func kid(for secret: [UInt8]) -> String {
        let digest = Digest.sha256(Array("authd-kid-v1:".utf8) + secret)
        return Base64URL.encode(digest.prefix(9))
    }
}

/// The keys that may verify one kind of token, and the one that signs. All
/// share one algorithm, to which verification is pinned.
public struct KeySet: Sendable {
    public let current: SigningKey
    private let byKid: [String: SigningKey]

    public init(current: SigningKey, older: [SigningKey] = []) {
        self.current = current
        var byKid: [String: SigningKey] = [:]
        for key in older where key.algorithm == current.algorithm { byKid[key.kid] = key }
        byKid[current.kid] = current
        self.byKid = byKid
    }

    public var algorithm: SigningAlgorithm { current.algorithm }

    /// The key named `kid`, by its exact bytes (dictionary lookup alone is
    /// canonical equivalence: another spelling would find the key).
    public func key(for kid: String) -> SigningKey? {
        guard let key = byKid[kid], key.kid.utf8.elementsEqual(kid.utf8) else { return nil }
        return key
    }

    public var all: [SigningKey] { byKid.values.sorted { $0.kid < $1.kid } }
}
