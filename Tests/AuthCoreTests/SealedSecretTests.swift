import AuthCrypto
import Testing

/// AES-256-GCM and the key-encryption key: the vectors of the GCM
/// specification (McGrew and Viega, test cases 13 to 16, 256-bit keys), and
/// what a box refuses.
@Suite struct SealedSecretTests {
    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let key: String
        let nonce: String
        let plaintext: String
        let associatedData: String
        let sealed: String
        var testDescription: String { name }
    }

    static let feffe = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
    static let vectors = [
        Vector(
            name: "13: empty", key: String(repeating: "0", count: 64), nonce: String(repeating: "0", count: 24),
            plaintext: "", associatedData: "", sealed: "530f8afbc74536b9a963b4f1c4cb738b"),
        Vector(
            name: "14: one block", key: String(repeating: "0", count: 64), nonce: String(repeating: "0", count: 24),
            plaintext: String(repeating: "0", count: 32), associatedData: "",
            sealed: "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
        Vector(
            name: "15: four blocks", key: feffe, nonce: "cafebabefacedbaddecaf888",
            plaintext:
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            associatedData: "",
            sealed:
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015adb094dac5d93471bdec1a502270e3cc6c"
        ),
        Vector(
            name: "16: associated data", key: feffe, nonce: "cafebabefacedbaddecaf888",
            plaintext:
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            associatedData: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            sealed:
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b"
        ),
    ]

    @Test(arguments: vectors) func theSpecificationsVectors(_ vector: Vector) throws {
        let key = Self.hex(vector.key)
        let nonce = Self.hex(vector.nonce)
        let box = try AESGCM.seal(
            Self.hex(vector.plaintext), key: key, associatedData: Self.hex(vector.associatedData), nonce: nonce)
        #expect(box == nonce + Self.hex(vector.sealed))
        #expect(
            try AESGCM.open(box, key: key, associatedData: Self.hex(vector.associatedData))
                == Self.hex(vector.plaintext))
    }

    @Test func aBoxOpensOnlyUnderItsKeyAndData() throws {
        let key = KeyEncryptionKey.generate()
        let secret = Array("a signing secret of thirty-two bytes".utf8)
        let box = try AESGCM.seal(secret, key: key.bytes, associatedData: Array("kid-1".utf8))
        #expect(try AESGCM.open(box, key: key.bytes, associatedData: Array("kid-1".utf8)) == secret)
        // Two seals of one secret differ (a fresh nonce each).
        #expect(try AESGCM.seal(secret, key: key.bytes, associatedData: Array("kid-1".utf8)) != box)
        #expect(throws: AESGCM.Failure.self) {
            try AESGCM.open(box, key: KeyEncryptionKey.generate().bytes, associatedData: Array("kid-1".utf8))
        }
        #expect(throws: AESGCM.Failure.self) {
            try AESGCM.open(box, key: key.bytes, associatedData: Array("kid-2".utf8))
        }
        for index in [0, AESGCM.nonceBytes, box.count - 1] {
            var changed = box
            changed[index] ^= 1
            #expect(throws: AESGCM.Failure.self) {
                try AESGCM.open(changed, key: key.bytes, associatedData: Array("kid-1".utf8))
            }
        }
        #expect(throws: AESGCM.Failure.self) { try AESGCM.open(Array(box.prefix(27)), key: key.bytes) }
        #expect(throws: AESGCM.Failure.self) { try AESGCM.seal(secret, key: Array(key.bytes.prefix(16))) }
    }

    @Test func theKeyIsReadAsHexOrBase64AndNeverPrinted() throws {
        let bytes = (0..<32).map { UInt8($0) }
        let hex = try KeyEncryptionKey(text: "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n")
        #expect(hex.bytes == bytes)
        #expect(hex.text == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        #expect(try KeyEncryptionKey(text: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").bytes == bytes)
        #expect(try KeyEncryptionKey(text: "  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 ").bytes == bytes)
        #expect(try KeyEncryptionKey(text: hex.text).checkValue == hex.checkValue)
        #expect(KeyEncryptionKey.generate().checkValue != hex.checkValue)
        #expect(!hex.checkValue.contains(hex.text) && "\(hex)" == "KeyEncryptionKey(hidden)")
        let secretText = "not-a-key-but-a-secret"
        for bad in ["", secretText, String(repeating: "g", count: 64), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="] {
            #expect {
                _ = try KeyEncryptionKey(text: bad)
            } throws: { error in
                !"\(error)".contains(secretText) && "\(error)".contains("key-encryption key")
            }
        }
    }
}
