import Testing

@testable import AuthCrypto

@Suite struct TOTPTests {
    static let seeds: [TOTP.Algorithm: [UInt8]] = [
        .sha1: Array("12345678901234567890".utf8),
        .sha256: Array("12345678901234567890123456789012".utf8),
        .sha512: Array("1234567890123456789012345678901234567890123456789012345678901234".utf8),
    ]

    /// RFC 6238 Appendix B: 8 digits, 30 s, each algorithm with its seed.
    @Test(arguments: [
        (Int64(59), "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ])
    func rfc6238Vectors(time: Int64, sha1: String, sha256: String, sha512: String) throws {
        for (algorithm, expected) in [(TOTP.Algorithm.sha1, sha1), (.sha256, sha256), (.sha512, sha512)] {
            let totp = try TOTP(secret: Self.seeds[algorithm]!, algorithm: algorithm, digits: 8, period: 30)
            #expect(totp.code(at: time) == expected, "\(algorithm) at \(time)")
        }
    }

    /// RFC 4226 Appendix D: HOTP, SHA-1, 6 digits, counters 0 to 9.
    @Test func rfc4226Vectors() throws {
        let hotp = try TOTP(secret: Self.seeds[.sha1]!, digits: 6, period: 1)
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
        ]
        #expect((0..<10).map { hotp.code(step: Int64($0)) } == expected)
    }

    /// One step either side is accepted, and which step matched is told
    /// (the caller refuses one already used); further is not.
    @Test func aCodeMatchesWithinOneStep() throws {
        let totp = try TOTP(secret: TOTP.newSecret())
        let now: Int64 = 1_800_000_015
        let step = totp.step(at: now)
        #expect(totp.matchingStep(totp.code(step: step), at: now) == step)
        #expect(totp.matchingStep(totp.code(step: step - 1), at: now) == step - 1)
        #expect(totp.matchingStep(totp.code(step: step + 1), at: now) == step + 1)
        for far in [step - 2, step + 2]
        where ![step - 1, step, step + 1].map({ totp.code(step: $0) }).contains(totp.code(step: far)) {
            #expect(totp.matchingStep(totp.code(step: far), at: now) == nil)
        }
        #expect(totp.matchingStep("12345", at: now) == nil)
        #expect(totp.matchingStep("", at: now) == nil)
        #expect(totp.code(at: now).count == 6)
    }

    @Test func parametersAreChecked() {
        #expect(throws: TOTP.Failure.self) { try TOTP(secret: [UInt8](repeating: 1, count: 15)) }
        #expect(throws: TOTP.Failure.self) { try TOTP(secret: [UInt8](repeating: 1, count: 20), digits: 5) }
        #expect(throws: TOTP.Failure.self) { try TOTP(secret: [UInt8](repeating: 1, count: 20), digits: 10) }
        #expect(throws: TOTP.Failure.self) { try TOTP(secret: [UInt8](repeating: 1, count: 20), period: 0) }
    }

    /// RFC 4648 section 10's vectors, without padding, both ways; other
    /// spellings of a value are refused.
    @Test func base32() {
        let vectors = [
            ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
            #expect(Base32.decode(encoded.lowercased()) == Array(plain.utf8))
        }
        #expect(Base32.decode("MZ") == nil)  // bits left over that are not zero
        #expect(Base32.decode("M") == nil)  // an impossible length
        #expect(Base32.decode("MZXW6===") == nil)  // padding
        #expect(Base32.decode("MZXW 6") == nil)
        #expect(Base32.decode("MZXW1") == nil)
    }

    @Test func theURIIsWhatAuthenticatorAppsRead() throws {
        let totp = try TOTP(secret: Array("12345678901234567890".utf8))
        #expect(
            totp.uri(issuer: "authd", account: "alice@example.com")
                == "otpauth://totp/authd:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=authd&algorithm=SHA1&digits=6&period=30"
        )
        #expect(TOTP.percentEncoded("Ex Co:é/?&") == "Ex%20Co%3A%C3%A9%2F%3F%26")
    }
}
