import CCrypto

/// AES-256-GCM (NIST SP 800-38D) through OpenSSL's EVP interface, for
/// secrets kept at rest under the key-encryption key: signing keys in a
/// database several hosts share, second-factor secrets. A sealed box is the
/// 12-byte nonce, the ciphertext and the 16-byte tag, in that order. The
/// associated data names what the box holds (a key id, a user id): a box
/// copied into another row does not open there.
public enum AESGCM {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let keyBytes = 32
    public static let nonceBytes = 12
    public static let tagBytes = 16

    // OpenSSL's EVP_CTRL_AEAD_* values (macros Swift does not import).
    private static let setIVLength: Int32 = 0x9
    private static let getTag: Int32 = 0x10
    private static let setTag: Int32 = 0x11

    /// Seals `plaintext`; the nonce is random unless given (tests only: a
    /// nonce must never repeat under one key).
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], associatedData: [UInt8] = [], nonce: [UInt8]? = nil
    ) throws -> [UInt8] {
        guard key.count == keyBytes else { throw Failure(description: "an AES-256 key is 32 bytes") }
        let nonce = nonce ?? SecureRandom.bytes(nonceBytes)
        guard nonce.count == nonceBytes else { throw Failure(description: "a GCM nonce is 12 bytes here") }
        guard let context = EVP_CIPHER_CTX_new() else { throw Failure(description: "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagBytes)
        var length: Int32 = 0
        var total: Int32 = 0
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, setIVLength, Int32(nonceBytes), nil) == 1,
            EVP_EncryptInit_ex(context, nil, nil, key, nonce) == 1,
            associatedData.isEmpty
                || EVP_EncryptUpdate(context, nil, &length, associatedData, Int32(associatedData.count)) == 1,
            plaintext.isEmpty
                || EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1
        else { throw Failure(description: "AES-GCM encryption failed") }
        total = plaintext.isEmpty ? 0 : length
        let finished = ciphertext.withUnsafeMutableBufferPointer { buffer in
            EVP_EncryptFinal_ex(context, buffer.baseAddress! + Int(total), &length)
        }
        guard finished == 1, EVP_CIPHER_CTX_ctrl(context, getTag, Int32(tagBytes), &tag) == 1 else {
            throw Failure(description: "AES-GCM encryption failed")
        }
        total += length
        return nonce + ciphertext.prefix(Int(total)) + tag
    }

    /// Opens a box `seal` made with the same key and associated data;
    /// anything else (another key, other data, a changed byte) fails.
    public static func open(_ box: [UInt8], key: [UInt8], associatedData: [UInt8] = []) throws -> [UInt8] {
        guard key.count == keyBytes else { throw Failure(description: "an AES-256 key is 32 bytes") }
        guard box.count >= nonceBytes + tagBytes else { throw Failure(description: "the sealed box is too short") }
        let nonce = Array(box.prefix(nonceBytes))
        let ciphertext = Array(box.dropFirst(nonceBytes).dropLast(tagBytes))
        var tag = Array(box.suffix(tagBytes))
        guard let context = EVP_CIPHER_CTX_new() else { throw Failure(description: "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, setIVLength, Int32(nonceBytes), nil) == 1,
            EVP_DecryptInit_ex(context, nil, nil, key, nonce) == 1,
            associatedData.isEmpty
                || EVP_DecryptUpdate(context, nil, &length, associatedData, Int32(associatedData.count)) == 1,
            ciphertext.isEmpty
                || EVP_DecryptUpdate(context, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1,
            EVP_CIPHER_CTX_ctrl(context, setTag, Int32(tagBytes), &tag) == 1
        else { throw Failure(description: "AES-GCM decryption failed") }
        let total = ciphertext.isEmpty ? 0 : length
        let verified = plaintext.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(context, buffer.baseAddress! + Int(total), &length)
        }
        guard verified == 1 else { throw Failure(description: "the sealed box does not open under this key") }
        return Array(plaintext.prefix(Int(total + length)))
    }
}
