import AuthCrypto

/// The contract's input rules for emails and passwords.
public enum EmailRule {
    public static let maximumBytes = 254

    /// Trims, normalises to Unicode NFC and lower-cases; `nil` when the
    /// result is not a plausible address (at most 254 bytes, exactly one `@`
    /// with text on both sides, no whitespace, control, invisible or
    /// bidirectional-control characters). NFC first, so the composed and
    /// decomposed spellings of `josé@x.com` are one account.
    public static func normalize(_ raw: String) -> String? {
        let trimmed = canonical(raw)
        guard !trimmed.isEmpty, trimmed.utf8.count <= maximumBytes else { return nil }
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        for scalar in trimmed.unicodeScalars where isRefused(scalar) {
            return nil
        }
        return trimmed
    }

    /// Characters an address may not hold: ASCII controls and space, DEL,
    /// any whitespace, and what renders as nothing or reorders text (format
    /// characters such as U+200B and U+202E, default-ignorable code points,
    /// bidi controls, line and paragraph separators), so two addresses that
    /// look identical are always the same bytes.
    static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x21 || scalar.value == 0x7F { return true }
        let properties = scalar.properties
        if properties.isWhitespace || properties.isDefaultIgnorableCodePoint || properties.isBidiControl
            || properties.isNoncharacterCodePoint
        {
            return true
        }
        switch properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
            return true
        default:
            return false
        }
    }

    /// Trimmed, NFC, lower-cased (and NFC again: lower-casing can
    /// decompose), whatever the rules say of it.
    static func canonical(_ raw: String) -> String {
        let lowered = String(decoding: raw.trimmingWhitespace()._nfcCodeUnits, as: UTF8.self).lowercased()
        return String(decoding: lowered._nfcCodeUnits, as: UTF8.self)
    }

    /// The rate-limit account key: the normalised email, or the trimmed,
    /// NFC, lower-cased form of whatever was sent when it is not a valid
    /// address, so the limit behaves alike whether or not the account exists.
    public static func accountKey(_ raw: String) -> String {
        normalize(raw) ?? String(decoding: canonical(raw).utf8.prefix(maximumBytes), as: UTF8.self)
    }
}

public enum PasswordPolicy {
    public static let minimumCharacters = 8
    /// bcrypt's limit, the default scheme's (`Scheme.maximumPasswordBytes`).
    public static let maximumBytes = PasswordHashing.Scheme.bcrypt.maximumPasswordBytes

    /// A password with a NUL byte is a params error wherever one is given
    /// (bcrypt would stop reading at it); `field` names the param.
    public static func refuseNUL(_ password: String, field: String) throws(AuthError) {
        if password.utf8.contains(0) { throw .invalidParams(field: field, "Password must not contain NUL") }
    }

    /// Checks a new password, to be hashed in `scheme`; `field` names the
    /// param in the error.
    public static func validateNew(_ password: String, field: String, scheme: PasswordHashing.Scheme)
        throws(AuthError)
    {
        let bytes = password.utf8
        try refuseNUL(password, field: field)
        if password.unicodeScalars.count < minimumCharacters { throw .weakPassword(field: field) }
        if bytes.count > scheme.maximumPasswordBytes { throw .passwordTooLong(field: field) }
    }

    /// At login a NUL is a params error; a password longer than the stored
    /// hash's scheme takes is simply wrong (no hash in that scheme can match
    /// it), after a hash all the same.
    public static func isUsableAtLogin(_ password: String, scheme: PasswordHashing.Scheme) -> Bool {
        password.utf8.count <= scheme.maximumPasswordBytes
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}

/// Role names: lower-case letters, digits, `_` and `-`, 1 to 32 of them.
public enum RoleRule {
    public static func isValid(_ role: String) -> Bool {
        let bytes = role.utf8
        guard (1...32).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
    }
}
