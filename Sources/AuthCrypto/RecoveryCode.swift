/// One-time recovery codes of a second factor: 16 base32 characters (80
/// random bits, so an unsalted SHA-256 of one is out of reach of a brute
/// force), written in four groups (`ABCD-EFGH-IJKL-MNOP`). Stored only as
/// the SHA-256 of their canonical form; typed in any case, with or without
/// the dashes and spaces.
public enum RecoveryCode {
    public static let count = 10
    static let characters = 16

    /// A new code, as shown to the user once.
    public static func generate() -> String {
        let text = Array(Base32.encode(SecureRandom.bytes(10)).utf8)
        var grouped: [UInt8] = []
        for (index, character) in text.enumerated() {
            if index > 0, index % 4 == 0 { grouped.append(UInt8(ascii: "-")) }
            grouped.append(character)
        }
        return String(decoding: grouped, as: UTF8.self)
    }

    /// The hash a typed code is stored and looked up by; nil when it cannot
    /// be a recovery code (wrong length or characters).
    public static func hash(_ typed: String) -> [UInt8]? {
        var canonical: [UInt8] = []
        for byte in typed.utf8 where byte != UInt8(ascii: "-") && byte != UInt8(ascii: " ") {
            canonical.append(byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 32 : byte)
        }
        guard canonical.count == characters,
            Base32.decode(String(decoding: canonical, as: UTF8.self)) != nil
        else { return nil }
        return Digest.sha256(Array("authd recovery code v1\u{0}".utf8) + canonical)
    }
}
