import CCrypto

/// Ed25519 (RFC 8032) through OpenSSL's EVP interface: keys from a raw
/// 32-byte seed or PKCS#8 PEM, signing and verification.
public final class Ed25519PrivateKey: @unchecked Sendable {
    private let key: OpaquePointer
    /// The 32-byte seed (the private key proper).
    public let seed: [UInt8]
    public let publicKey: Ed25519PublicKey

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(seed: [UInt8]) throws {
        guard seed.count == 32,
            let key = seed.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
            })
        else { throw Failure(description: "an Ed25519 seed is 32 bytes") }
        self.key = key
        self.seed = seed
        var publicBytes = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &publicBytes, &length) == 1, length == 32 else {
            EVP_PKEY_free(key)
            throw Failure(description: "cannot derive the Ed25519 public key")
        }
        self.publicKey = try Ed25519PublicKey(bytes: publicBytes)
    }

    public static func generate() throws -> Ed25519PrivateKey {
        try Ed25519PrivateKey(seed: SecureRandom.bytes(32))
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) holding an Ed25519 key.
    /// (A factory rather than a convenience initializer: the delegating
    /// initializer leaked the object under AddressSanitizer.)
    public static func fromPEM(_ pem: [UInt8]) throws -> Ed25519PrivateKey {
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw Failure(description: "not a PEM private key") }
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else {
            throw Failure(description: "the PEM key is not an Ed25519 key")
        }
        var seed = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_private_key(key, &seed, &length) == 1, length == 32 else {
            throw Failure(description: "cannot read the Ed25519 key")
        }
        return try Ed25519PrivateKey(seed: seed)
    }

    /// The key as PKCS#8 PEM.
    public func pem() throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw Failure(description: "BIO_new failed") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else {
            throw Failure(description: "cannot write the PEM key")
        }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard let pointer, length > 0 else { throw Failure(description: "empty PEM") }
        return UnsafeRawBufferPointer(start: pointer, count: length).map { $0 }
    }

    deinit { EVP_PKEY_free(key) }

    /// A 64-byte Ed25519 signature of `message`.
    public func sign(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok =
            EVP_DigestSignInit(context, nil, nil, nil, key) == 1
            && EVP_DigestSign(
                context, &signature, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
                == 1
        precondition(ok && length == 64, "Ed25519 signing failed in libcrypto")
        return signature
    }

    public func sign(_ message: [UInt8]) -> [UInt8] { message.withUnsafeBytes { sign($0) } }
}

public final class Ed25519PublicKey: @unchecked Sendable {
    private let key: OpaquePointer
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32,
            let key = bytes.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
            })
        else { throw Ed25519PrivateKey.Failure(description: "an Ed25519 public key is 32 bytes") }
        self.key = key
        self.bytes = bytes
    }

    deinit { EVP_PKEY_free(key) }

    public func isValidSignature(_ signature: [UInt8], for message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        return signature.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(
                context, sig.baseAddress, 64, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
                == 1
        }
    }

    /// The RFC 7638 thumbprint of the key's JWK, base64url: a standard `kid`.
    public var thumbprint: String {
        let canonical = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"\(Base64URL.encode(bytes))\"}"
        return Base64URL.encode(Digest.sha256(Array(canonical.utf8)))
    }
}
