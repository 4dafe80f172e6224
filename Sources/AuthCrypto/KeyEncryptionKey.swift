/// The key-encryption key: the AES-256-GCM key that seals secrets at rest
/// (`AESGCM`). Given as the credential `key-encryption-key` or the
/// environment variable `AUTHD_KEY_ENCRYPTION_KEY`: 64 hexadecimal
/// characters, or base64 (standard or URL-safe, padded or not) of 32 bytes.
/// It is never printed: its description hides it, and hosts compare
/// `checkValue`, which does not reveal it.
public struct KeyEncryptionKey: Sendable, CustomStringConvertible {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == AESGCM.keyBytes else {
            throw Failure(description: "the key-encryption key must be 32 bytes")
        }
        self.bytes = bytes
    }

    /// Parses the text form; surrounding whitespace (a file's trailing
    /// newline) is ignored. The message never repeats the text.
    public init(text: String) throws {
        let trimmed = Array(text.utf8.drop { Self.isSpace($0) }.reversed().drop { Self.isSpace($0) }.reversed())
        if trimmed.count == 64, let bytes = Self.hex(trimmed) {
            try self.init(bytes: bytes)
            return
        }
        // Standard base64 is base64url with two other letters.
        let urlSafe = trimmed.filter { $0 != UInt8(ascii: "=") }.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            default: byte
            }
        }
        guard let bytes = Base64URL.decode(urlSafe), bytes.count == AESGCM.keyBytes else {
            throw Failure(
                description: "the key-encryption key must be 64 hexadecimal characters or base64 of 32 bytes")
        }
        try self.init(bytes: bytes)
    }

    public static func generate() -> KeyEncryptionKey {
        // 32 random bytes are always a valid key.
        try! KeyEncryptionKey(bytes: SecureRandom.bytes(AESGCM.keyBytes))
    }

    /// The text form a generated key is stored in (hexadecimal).
    public var text: String {
        bytes.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }

    /// Tells two keys apart without revealing either: an HMAC of a fixed
    /// label under the key, base64url.
    public var checkValue: String {
        Base64URL.encode(HMACKey(bytes: bytes).authenticate(Array("authd key-encryption-key check v1".utf8)))
    }

    public var description: String { "KeyEncryptionKey(hidden)" }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09
    }

    private static func hex(_ text: [UInt8]) -> [UInt8]? {
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = 0
        while index + 1 < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}
