import CArgon2
import Testing

@testable import AuthCrypto

@Suite struct Argon2idTests {
    /// RFC 9106 section 5.3: argon2id with a secret and associated data,
    /// 32 KiB, 3 passes, 4 lanes.
    @Test func rfc9106TestVector() throws {
        let tag = try Argon2id.raw(
            password: [UInt8](repeating: 0x01, count: 32), salt: [UInt8](repeating: 0x02, count: 16),
            secret: [UInt8](repeating: 0x03, count: 8), associatedData: [UInt8](repeating: 0x04, count: 12),
            parameters: .init(memoryKiB: 32, iterations: 3, parallelism: 4), tagBytes: 32)
        #expect(hex(tag) == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
    }

    /// The reference implementation's own test of the encoded form
    /// (argon2 `test.c`, version 0x13, t=2, m=2^16, p=1).
    @Test func referenceEncodedHashVerifies() {
        let reference = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
        #expect(Argon2id.verify(Array("password".utf8), encoded: reference))
        #expect(!Argon2id.verify(Array("passwore".utf8), encoded: reference))
        #expect(Argon2id.parameters(of: reference) == .init(memoryKiB: 65536, iterations: 2, parallelism: 1))
    }

    /// Our encoding (one thread, our PHC writer) against libargon2's own
    /// encoder (one thread per lane) for the same salt, at several lane
    /// counts and salt lengths whose base64 ends differently.
    @Test(arguments: [(1, 16), (2, 16), (4, 17), (3, 18)])
    func encodingMatchesTheLibrarysEncoder(parallelism: Int, saltLength: Int) throws {
        let parameters = Argon2id.Parameters(memoryKiB: 64 * parallelism, iterations: 2, parallelism: parallelism)
        let password = Array("correct horse battery staple".utf8)
        let salt = (0..<saltLength).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let ours = Argon2id.encode(
            parameters: parameters, salt: salt,
            tag: try Argon2id.raw(password: password, salt: salt, parameters: parameters, tagBytes: 32))
        var buffer = [CChar](repeating: 0, count: 256)
        let status = argon2id_hash_encoded(
            2, UInt32(parameters.memoryKiB), UInt32(parallelism), password, password.count, salt, salt.count, 32,
            &buffer, buffer.count)
        #expect(status == ARGON2_OK.rawValue)
        let library = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(ours == library)
        #expect(Argon2id.verify(password, encoded: library))
    }

    @Test func hashesVerifyAndSaltsDiffer() throws {
        let parameters = Argon2id.Parameters(memoryKiB: 256, iterations: 1, parallelism: 1)
        let first = try Argon2id.hash(Array("secret one".utf8), parameters: parameters)
        let second = try Argon2id.hash(Array("secret one".utf8), parameters: parameters)
        #expect(first != second)
        #expect(first.hasPrefix("$argon2id$v=19$m=256,t=1,p=1$"))
        #expect(Argon2id.verify(Array("secret one".utf8), encoded: first))
        #expect(Argon2id.verify(Array("secret one".utf8), encoded: second))
        #expect(!Argon2id.verify(Array("secret two".utf8), encoded: first))
        // No 72-byte limit: a long password counts to its last byte.
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 200)
        let longHash = try Argon2id.hash(long, parameters: parameters)
        #expect(Argon2id.verify(long, encoded: longHash))
        #expect(!Argon2id.verify(long.dropLast() + [UInt8(ascii: "b")], encoded: longHash))
    }

    @Test func anUnmatchableHashMatchesNothingAndCarriesItsParameters() {
        let parameters = Argon2id.Parameters(memoryKiB: 128, iterations: 1, parallelism: 2)
        let dummy = Argon2id.unmatchable(parameters: parameters)
        #expect(Argon2id.parameters(of: dummy) == parameters)
        #expect(!Argon2id.verify([], encoded: dummy))
        #expect(!Argon2id.verify(Array("password".utf8), encoded: dummy))
    }

    /// Only the form `encode` writes parses; a hash asking for more than
    /// the limits is refused before it is computed.
    @Test(arguments: [
        "",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
        "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$",
    ])
    func malformedHashesMatchNothing(_ encoded: String) {
        #expect(Argon2id.parameters(of: encoded) == nil)
        #expect(!Argon2id.verify(Array("password".utf8), encoded: encoded))
    }

    @Test func parametersBeyondTheLimitsAreNotComputed() {
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
        #expect(Argon2id.parameters(of: huge)?.isWithinLimits == false)
        #expect(!Argon2id.verify(Array("password".utf8), encoded: huge))
        let manyPasses = "$argon2id$v=19$m=64,t=11,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
        #expect(Argon2id.parameters(of: manyPasses)?.isWithinLimits == false)
        #expect(!Argon2id.verify(Array("password".utf8), encoded: manyPasses))
    }

    @Test func phcBase64RoundTripsAndRefusesOtherSpellings() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 7) }
            let text = PHCBase64.encode(bytes)
            #expect(!text.contains("="))
            #expect(PHCBase64.decode(Array(text.utf8)) == bytes)
        }
        #expect(PHCBase64.decode(Array("c29tZXNhbHQ".utf8)) == Array("somesalt".utf8))
        #expect(PHCBase64.decode(Array("c29tZXNhbHR".utf8)) == nil)  // non-zero trailing bits
        #expect(PHCBase64.decode(Array("c29tZ".utf8)) == nil)  // impossible length
        #expect(PHCBase64.decode(Array("c2-t".utf8)) == nil)  // the URL alphabet
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
