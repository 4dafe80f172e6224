/// The contract's input rules for emails and passwords.
public enum EmailRule {
    public static let maximumBytes = 254

    /// Trims and lower-cases; `nil` when the result is not a plausible
    /// address (at most 254 bytes, exactly one `@` with text on both sides,
    /// no whitespace or control characters).
    public static func normalize(_ raw: String) -> String? {
        let trimmed = raw.trimmingWhitespace().lowercased()
        guard !trimmed.isEmpty, trimmed.utf8.count <= maximumBytes else { return nil }
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        for scalar in trimmed.unicodeScalars
        where scalar.value < 0x21 || scalar.value == 0x7F || scalar.properties.isWhitespace {
            return nil
        }
        return trimmed
    }

    /// The rate-limit account key: the normalised email, or a trimmed,
    /// lower-cased form of whatever was sent when it is not a valid address,
    /// so the limit behaves alike whether or not the account exists.
    public static func accountKey(_ raw: String) -> String {
        normalize(raw)
            ?? String(decoding: raw.trimmingWhitespace().lowercased().utf8.prefix(maximumBytes), as: UTF8.self)
    }
}

public enum PasswordPolicy {
    public static let minimumCharacters = 8
    /// bcrypt reads at most 72 bytes.
    public static let maximumBytes = 72

    /// Checks a new password; `field` names the param in the error.
    public static func validateNew(_ password: String, field: String) throws(AuthError) {
        let bytes = password.utf8
        if bytes.contains(0) { throw .invalidParams(field: field, "Password must not contain NUL") }
        if password.unicodeScalars.count < minimumCharacters { throw .weakPassword(field: field) }
        if bytes.count > maximumBytes { throw .passwordTooLong(field: field) }
    }

    /// At login a NUL is a params error; an over-long password is simply
    /// wrong (it cannot match any stored hash), after a hash all the same.
    public static func isUsableAtLogin(_ password: String) -> Bool {
        password.utf8.count <= maximumBytes
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
