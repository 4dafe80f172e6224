/// Typed access to request params: a wrong type or a missing required
/// param is `-32602 invalid_params` naming the field. Unknown params are
/// ignored, as the contract says.
extension JSONObject {
    public func requiredString(_ field: String) throws(AuthError) -> String {
        guard case .string(let value)? = self[field] else { throw .invalidParams(field: field) }
        return value
    }

    public func optionalString(_ field: String) throws(AuthError) -> String? {
        switch self[field] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw .invalidParams(field: field)
        }
    }

    public func optionalBool(_ field: String) throws(AuthError) -> Bool? {
        switch self[field] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw .invalidParams(field: field)
        }
    }

    public func requiredInt(_ field: String) throws(AuthError) -> Int64 {
        guard let value = self[field]?.int64Value else { throw .invalidParams(field: field) }
        return value
    }

    public func optionalInt(_ field: String) throws(AuthError) -> Int64? {
        switch self[field] {
        case nil, .null?: return nil
        case let value?:
            guard let int = value.int64Value else { throw .invalidParams(field: field) }
            return int
        }
    }

    /// An id param: a JSON integer, or a string of digits (ids travel as
    /// strings in token `sub` claims, so both are accepted).
    public func requiredID(_ field: String) throws(AuthError) -> Int64 {
        switch self[field] {
        case .string(let text)?:
            guard let value = Int64(text) else { throw .invalidParams(field: field) }
            return value
        case let value?:
            guard let int = value.int64Value else { throw .invalidParams(field: field) }
            return int
        case nil: throw .invalidParams(field: field)
        }
    }

    /// A token param: missing or not a string is `-32602`; empty, or a bare
    /// `Bearer `, is `401 no_token`. See `BearerToken.strip`.
    public func bearerToken(_ field: String) throws(AuthError) -> String {
        guard let token = BearerToken.strip(try requiredString(field)) else { throw .noToken }
        return token
    }
}

/// The one rule for a token param, used by `token.verify` and by admin
/// methods alike: one leading `Bearer ` (exactly those bytes) is removed and
/// nothing else; what is left is the token, or nothing (`nil`) when it is
/// empty or only spaces. `"Bearer  tok"` is the token `" tok"`, which no
/// signature check accepts.
public enum BearerToken {
    private static let prefix: StaticString = "Bearer "

    public static func strip(_ raw: String) -> String? {
        let utf8 = raw.utf8
        // Byte comparisons: `hasPrefix` would be canonical equivalence.
        var start = utf8.startIndex
        if utf8.count >= prefix.utf8CodeUnitCount {
            let prefixBytes = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
            var index = utf8.startIndex
            var matches = true
            for byte in prefixBytes where matches {
                matches = utf8[index] == byte
                index = utf8.index(after: index)
            }
            if matches { start = index }
        }
        guard utf8[start...].contains(where: { $0 != UInt8(ascii: " ") }) else { return nil }
        return start == utf8.startIndex ? raw : String(Substring(utf8[start...]))
    }
}
