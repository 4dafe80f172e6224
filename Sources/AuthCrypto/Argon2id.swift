import CArgon2

/// argon2id (RFC 9106, version 0x13) through libargon2's `argon2_ctx`, in
/// the PHC string format every argon2 implementation reads
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<tag>`).
///
/// A hash runs on one thread whatever its parallelism: its lanes are
/// computed one after the other on the hashing worker that runs it, so the
/// worker pool stays the daemon's only bound on hashing threads (libargon2's
/// own encoder would start one thread per lane).
public enum Argon2id {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Memory in KiB, passes, and lanes.
    public struct Parameters: Sendable, Equatable, CustomStringConvertible {
        public var memoryKiB: Int
        public var iterations: Int
        public var parallelism: Int

        public init(memoryKiB: Int, iterations: Int, parallelism: Int) {
            self.memoryKiB = memoryKiB
            self.iterations = iterations
            self.parallelism = parallelism
        }

        /// What a stored hash may ask for before it is computed: a hash
        /// written with more (by another program, or a tampered row) is
        /// refused rather than allowed to take a gibibyte per attempt.
        public var isWithinLimits: Bool {
            Self.iterationLimits.contains(iterations) && Self.parallelismLimits.contains(parallelism)
                && memoryKiB >= 8 * parallelism && memoryKiB <= Self.memoryLimitKiB
        }

        public static let iterationLimits = 1...10
        public static let parallelismLimits = 1...8
        public static let memoryLimitKiB = 1_048_576

        public var description: String { "m=\(memoryKiB),t=\(iterations),p=\(parallelism)" }
    }

    static let saltBytes = 16
    static let tagBytes = 32

    /// Hashes `password` with a fresh salt.
    public static func hash(_ password: [UInt8], parameters: Parameters) throws -> String {
        let salt = SecureRandom.bytes(saltBytes)
        let tag = try raw(password: password, salt: salt, parameters: parameters, tagBytes: tagBytes)
        return encode(parameters: parameters, salt: salt, tag: tag)
    }

    /// A hash that costs one full computation at `parameters` to check and
    /// matches no password (its tag is random): the unknown-email path of a
    /// login, so it takes as long as a wrong password.
    public static func unmatchable(parameters: Parameters) -> String {
        encode(parameters: parameters, salt: SecureRandom.bytes(saltBytes), tag: SecureRandom.bytes(tagBytes))
    }

    /// Checks `password` against `encoded`; compares in constant time. A hash
    /// that does not parse, or asks for more than `Parameters.isWithinLimits`,
    /// matches nothing.
    public static func verify(_ password: [UInt8], encoded: String) -> Bool {
        guard let decoded = decode(encoded), decoded.parameters.isWithinLimits,
            let computed = try? raw(
                password: password, salt: decoded.salt, parameters: decoded.parameters, tagBytes: decoded.tag.count)
        else { return false }
        return Digest.constantTimeEquals(computed, decoded.tag)
    }

    /// Whether `encoded` is a hash `verify` computes (it parses, its
    /// parameters are within the limits and fit the memory budget): any
    /// other matches nothing at once, without a hash's time.
    public static func isVerifiable(_ encoded: String, budget: HashMemoryBudget = .shared) -> Bool {
        guard let parameters = decode(encoded)?.parameters else { return false }
        return parameters.isWithinLimits && budget.admits(kib: parameters.memoryKiB)
    }

    /// The parameters of a `$argon2id$v=19$…` hash, or nil if it is not one.
    public static func parameters(of encoded: String) -> Parameters? {
        decode(encoded)?.parameters
    }

    /// The tag itself, with the optional secret and associated data of RFC
    /// 9106 (its test vectors use both; authd's hashes use neither).
    /// Holds `parameters.memoryKiB` of `budget` while it runs.
    public static func raw(
        password: [UInt8], salt: [UInt8], secret: [UInt8] = [], associatedData: [UInt8] = [],
        parameters: Parameters, tagBytes: Int, budget: HashMemoryBudget = .shared
    ) throws -> [UInt8] {
        try budget.withReservation(kib: parameters.memoryKiB) {
            try compute(
                password: password, salt: salt, secret: secret, associatedData: associatedData,
                parameters: parameters, tagBytes: tagBytes)
        }
    }

    private static func compute(
        password: [UInt8], salt: [UInt8], secret: [UInt8], associatedData: [UInt8], parameters: Parameters,
        tagBytes: Int
    ) throws -> [UInt8] {
        guard parameters.memoryKiB >= 8 * parameters.parallelism, parameters.iterations >= 1,
            parameters.parallelism >= 1, tagBytes >= 4
        else { throw Failure(description: "argon2id parameters out of range: \(parameters)") }
        var tag = [UInt8](repeating: 0, count: tagBytes)
        var password = password
        var salt = salt
        var secret = secret
        var associatedData = associatedData
        defer {
            // The copy handed to the library is not left in memory.
            for index in password.indices { password[index] = 0 }
        }
        let status = tag.withUnsafeMutableBufferPointer { out in
            password.withUnsafeMutableBufferPointer { pwd in
                salt.withUnsafeMutableBufferPointer { salt in
                    secret.withUnsafeMutableBufferPointer { secret in
                        associatedData.withUnsafeMutableBufferPointer { ad in
                            var context = argon2_context(
                                out: out.baseAddress, outlen: UInt32(out.count),
                                pwd: pwd.baseAddress, pwdlen: UInt32(pwd.count),
                                salt: salt.baseAddress, saltlen: UInt32(salt.count),
                                secret: secret.baseAddress, secretlen: UInt32(secret.count),
                                ad: ad.baseAddress, adlen: UInt32(ad.count),
                                t_cost: UInt32(parameters.iterations), m_cost: UInt32(parameters.memoryKiB),
                                lanes: UInt32(parameters.parallelism), threads: 1,
                                version: UInt32(ARGON2_VERSION_13.rawValue),
                                allocate_cbk: nil, free_cbk: nil, flags: 0)  // ARGON2_DEFAULT_FLAGS
                            return argon2_ctx(&context, Argon2_id)
                        }
                    }
                }
            }
        }
        guard status == ARGON2_OK.rawValue else {
            throw Failure(description: "argon2id failed: \(String(cString: argon2_error_message(status)))")
        }
        return tag
    }

    // MARK: PHC string format

    static func encode(parameters: Parameters, salt: [UInt8], tag: [UInt8]) -> String {
        "$argon2id$v=19$\(parameters)$\(PHCBase64.encode(salt))$\(PHCBase64.encode(tag))"
    }

    struct Decoded {
        var parameters: Parameters
        var salt: [UInt8]
        var tag: [UInt8]
    }

    /// Only what `encode` writes (and the reference implementation too):
    /// version 19, the three parameters in order, an 8-to-64-byte salt and a
    /// 4-to-64-byte tag.
    static func decode(_ encoded: String) -> Decoded? {
        let fields = encoded.utf8.split(separator: UInt8(ascii: "$"), omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].isEmpty, fields[1].elementsEqual("argon2id".utf8),
            fields[2].elementsEqual("v=19".utf8)
        else { return nil }
        let values = fields[3].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard values.count == 3, let memory = number(values[0], named: "m"), let passes = number(values[1], named: "t"),
            let lanes = number(values[2], named: "p"), let salt = PHCBase64.decode(fields[4]),
            let tag = PHCBase64.decode(fields[5]), (8...64).contains(salt.count), (4...64).contains(tag.count)
        else { return nil }
        return Decoded(
            parameters: Parameters(memoryKiB: memory, iterations: passes, parallelism: lanes), salt: salt, tag: tag)
    }

    /// `name=digits`, no sign, no leading zero, at most 10 digits.
    private static func number(_ field: Substring.UTF8View.SubSequence, named name: Character) -> Int? {
        let bytes = Array(field)
        guard bytes.count >= 3, bytes.count <= 12, bytes[0] == name.asciiValue, bytes[1] == UInt8(ascii: "=") else {
            return nil
        }
        let digits = bytes[2...]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            digits.first != UInt8(ascii: "0") || digits.count == 1
        else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }
}

/// Base64 with the standard alphabet and no padding, as the PHC string
/// format writes salts and hashes. Decoding refuses padding, other bytes,
/// an impossible length and non-zero bits after the last byte.
enum PHCBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var word: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { word |= UInt32(byte) << (16 - 8 * offset) }
            for position in 0..<(chunk.count + 1) { out.append(alphabet[Int((word >> (18 - 6 * position)) & 0x3F)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var word: UInt32 = 0
        var bits = 0
        for character in text {
            guard let value = value(of: character) else { return nil }
            word = (word << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((word >> UInt32(bits)) & 0xFF))
            }
        }
        // The bits left over must be zero: one spelling per value.
        guard word & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }

    private static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
