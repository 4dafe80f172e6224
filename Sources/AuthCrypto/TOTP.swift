import CCrypto

/// Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226). The
/// algorithm, digit count and period are parameters so that the RFC's own
/// vectors are tests; the product uses `standard` (SHA-1, 6 digits, 30 s:
/// what the common authenticator apps read). Pure: the time is a parameter.
public struct TOTP: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha1 = "SHA1"
        case sha256 = "SHA256"
        case sha512 = "SHA512"
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let secret: [UInt8]
    public let algorithm: Algorithm
    public let digits: Int
    public let period: Int64

    /// `digits` 6 to 9 (RFC 4226 asks for at least 6; a 31-bit truncation
    /// holds 9), `period` at least one second, a secret of 16 bytes or more
    /// (RFC 4226 asks for 128 bits at least; authd makes 20).
    public init(secret: [UInt8], algorithm: Algorithm = .sha1, digits: Int = 6, period: Int64 = 30) throws {
        guard (6...9).contains(digits) else { throw Failure(description: "TOTP digits must be 6 to 9") }
        guard period >= 1 else { throw Failure(description: "TOTP period must be at least 1 s") }
        guard secret.count >= 16 else { throw Failure(description: "TOTP secret must be at least 16 bytes") }
        self.secret = secret
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
    }

    /// A new secret of 20 random bytes (160 bits, RFC 4226's recommendation).
    public static func newSecret() -> [UInt8] { SecureRandom.bytes(20) }

    /// The time step `unixTime` falls in (times before 1970 are step 0's).
    public func step(at unixTime: Int64) -> Int64 { max(0, unixTime) / period }

    /// The code of `step`, zero-padded to `digits`.
    public func code(step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let mac = withUnsafeBytes(of: &counter) { hmac(Array($0)) }
        // Dynamic truncation (RFC 4226 section 5.3).
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary =
            (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    public func code(at unixTime: Int64) -> String { code(step: step(at: unixTime)) }

    /// The step within `window` steps of `unixTime`'s whose code is `code`
    /// (every candidate compared in constant time, all of them always), or
    /// nil. The caller refuses a step at or before the last one accepted.
    public func matchingStep(_ code: String, at unixTime: Int64, window: Int64 = 1) -> Int64? {
        let given = Array(code.utf8)
        let current = step(at: unixTime)
        var found: Int64?
        for candidate in (current - window)...(current + window) where candidate >= 0 {
            if Digest.constantTimeEquals(Array(self.code(step: candidate).utf8), given) && found == nil {
                found = candidate
            }
        }
        return found
    }

    /// The `otpauth://totp/` URI authenticator apps read (from a QR code):
    /// the label is `issuer:account`, both percent-encoded, with the issuer,
    /// algorithm, digits and period as parameters.
    public func uri(issuer: String, account: String) -> String {
        let label = Self.percentEncoded(issuer) + ":" + Self.percentEncoded(account)
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(Self.percentEncoded(issuer))"
            + "&algorithm=\(algorithm.rawValue)&digits=\(digits)&period=\(period)"
    }

    /// RFC 3986 unreserved characters kept, every other byte `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }

    private func hmac(_ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length = 0
        let ok = algorithm.rawValue.withCString { digest in
            EVP_Q_mac(
                nil, "HMAC", nil, digest, nil, secret, secret.count, message, message.count, &out, out.count, &length)
                != nil
        }
        precondition(ok, "HMAC-\(algorithm.rawValue) failed in libcrypto")
        return Array(out.prefix(length))
    }
}
