import AuthCrypto
import Testing

@Suite struct Base64URLTests {
    @Test func encodesRFC4648Vectors() {
        let vectors: [(String, String)] = [
            ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test func usesTheURLAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
    }

    @Test(arguments: ["Zg==", "Z", "Zm9v+", "Zm9v/", "Zm 9v", "Zh", "Zm9"])
    func refusesPaddingForeignBytesAndNonCanonicalInput(_ input: String) {
        // "Zh" and "Zm9" carry non-zero trailing bits ("Zg" and "Zm8" are the
        // canonical spellings); accepting them would give one value two encodings.
        #expect(Base64URL.decode(input) == nil)
    }

    @Test func roundTripsRandomBytes() {
        for length in 0..<70 {
            let bytes = SecureRandom.bytes(length)
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
    }
}
