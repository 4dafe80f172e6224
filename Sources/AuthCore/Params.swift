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
    /// `Bearer `, is `401 no_token`. A leading `Bearer ` is stripped.
    public func bearerToken(_ field: String) throws(AuthError) -> String {
        let raw = try requiredString(field)
        var token = Substring(raw)
        if token.hasPrefix("Bearer ") { token = token.dropFirst(7) }
        token = token.drop { $0 == " " }
        if token.isEmpty { throw .noToken }
        return String(token)
    }
}
