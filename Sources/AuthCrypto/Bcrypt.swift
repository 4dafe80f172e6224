import CXCrypt

/// bcrypt (`$2b$`) through libxcrypt's `crypt_gensalt_rn` and `crypt_r`.
/// Callers run these on the hashing workers: one hash at cost 12 is ~200 ms.
public enum Bcrypt {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private final class Scratch {
        let data: UnsafeMutablePointer<crypt_data>
        init() {
            data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
            // crypt_r requires the area zeroed before its first use.
            UnsafeMutableRawPointer(data).initializeMemory(
                as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        }
        deinit { data.deallocate() }
    }
    private static let scratch = ThreadLocal { Scratch() }

    /// A `$2b$` setting (a salt at `cost`, no hash). Checking any password
    /// against it costs one full hash at that cost and never matches: the
    /// unknown-email path of a login, so it takes as long as a wrong password.
    public static func unmatchableSetting(cost: Int) throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$2b$", UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil else {
            throw Failure(description: "crypt_gensalt_rn failed for cost \(cost)")
        }
        return cString(setting)
    }

    private static func cString(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The most bcrypt reads; a longer password is refused, never cut.
    public static let maximumPasswordBytes = 72

    /// Hashes `password` (which must not contain NUL) with a fresh salt.
    public static func hash(_ password: [UInt8], cost: Int) throws -> String {
        precondition(!password.contains(0), "passwords with NUL are refused before hashing")
        guard password.count <= maximumPasswordBytes else {
            throw Failure(description: "bcrypt takes at most \(maximumPasswordBytes) bytes of password")
        }
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$2b$", UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil else {
            throw Failure(description: "crypt_gensalt_rn failed for cost \(cost)")
        }
        guard let result = crypt(password, setting: cString(setting)), !result.hasPrefix("*") else {
            throw Failure(description: "crypt_r failed")
        }
        return result
    }

    /// Checks `password` against `hash` by re-hashing; compares in constant time.
    public static func verify(_ password: [UInt8], hash: String) -> Bool {
        if password.contains(0) { return false }
        guard let computed = crypt(password, setting: hash), !computed.hasPrefix("*") else {
            return false
        }
        return Digest.constantTimeEquals(Array(computed.utf8), Array(hash.utf8))
    }

    /// Whether `hash` is a whole bcrypt hash (`$2a$`, `$2b$` or `$2y$`, a cost
    /// from 04 to 31, 53 characters of salt and hash): one `verify`
    /// computes. Anything else matches nothing at once.
    public static func isWellFormed(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, let cost = cost(of: hash), (4...31).contains(cost),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2])
        else { return false }
        return bytes[7...].allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "/")
        }
    }

    /// The cost of a `$2b$NN$…` hash, or nil if it is not one.
    public static func cost(of hash: String) -> Int? {
        let bytes = Array(hash.utf8)
        guard bytes.count >= 7, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$")
        else { return nil }
        guard let tens = digit(bytes[4]), let ones = digit(bytes[5]) else { return nil }
        return tens * 10 + ones
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func crypt(_ password: [UInt8], setting: String) -> String? {
        let data = scratch.value.data
        var phrase = password.map { CChar(bitPattern: $0) }
        phrase.append(0)
        defer {
            // Do not leave the password in the reusable scratch area or copy.
            for index in phrase.indices { phrase[index] = 0 }
        }
        guard let result = crypt_r(phrase, setting, data) else { return nil }
        return String(cString: result)
    }
}
