import AuthCrypto

/// The params of the admin methods, decoded in pure code after the caller
/// has been authorised.

/// `user.create`.
public struct CreateUserRequest: Sendable, Equatable {
    public let email: String
    public let password: String
    public let role: String
    public let active: Bool

    /// `scheme`: the configured one, which the password will be hashed in.
    public init(params: JSONObject, scheme: PasswordHashing.Scheme = .bcrypt) throws(AuthError) {
        guard let email = EmailRule.normalize(try params.requiredString("email")) else { throw .invalidEmail() }
        self.email = email
        password = try params.requiredString("password")
        try PasswordPolicy.validateNew(password, field: "password", scheme: scheme)
        role = try params.optionalString("role") ?? "user"
        guard RoleRule.isValid(role) else { throw .invalidParams(field: "role", "Invalid role name") }
        active = try params.optionalBool("active") ?? true
    }
}

/// `user.get`: by `id`, else by `email`.
public enum GetUserRequest: Sendable, Equatable {
    case id(Int64)
    /// The normalised email, or nil when the given one cannot be an address.
    case email(String?)

    public init(params: JSONObject) throws(AuthError) {
        if params["id"] != nil && params["id"] != .null {
            self = .id(try params.requiredID("id"))
        } else {
            self = .email(EmailRule.normalize(try params.requiredString("email")))
        }
    }
}

/// `user.list`: a page of at most `limit` users after the cursor.
public struct ListUsersRequest: Sendable, Equatable {
    public let limit: Int
    public let after: Int64

    public init(params: JSONObject) throws(AuthError) {
        let limit = try params.optionalInt("limit") ?? 100
        guard (1...1000).contains(limit) else { throw .invalidParams(field: "limit", "limit must be 1 to 1000") }
        self.limit = Int(limit)
        if let cursor = try params.optionalString("after") {
            guard let decoded = UserCursor.decode(cursor) else {
                throw .invalidParams(field: "after", "Invalid cursor")
            }
            after = decoded
        } else {
            after = 0
        }
    }
}

/// `user.update`: any of role, active flag and email.
public struct UpdateUserRequest: Sendable, Equatable {
    public let id: Int64
    public let role: String?
    public let active: Bool?
    public let email: String?

    public init(params: JSONObject) throws(AuthError) {
        id = try params.requiredID("id")
        role = try params.optionalString("role")
        if let role, !RoleRule.isValid(role) { throw .invalidParams(field: "role", "Invalid role name") }
        active = try params.optionalBool("active")
        if let raw = try params.optionalString("email") {
            guard let normalized = EmailRule.normalize(raw) else { throw .invalidEmail() }
            email = normalized
        } else {
            email = nil
        }
    }
}

/// `user.set_password`.
public struct SetPasswordRequest: Sendable, Equatable {
    public let id: Int64
    public let password: String

    public init(params: JSONObject, scheme: PasswordHashing.Scheme = .bcrypt) throws(AuthError) {
        id = try params.requiredID("id")
        password = try params.requiredString("password")
        try PasswordPolicy.validateNew(password, field: "password", scheme: scheme)
    }
}

/// `user.delete`.
public struct DeleteUserRequest: Sendable, Equatable {
    public let id: Int64

    public init(params: JSONObject) throws(AuthError) {
        id = try params.requiredID("id")
    }
}

/// `session.list`.
public struct ListSessionsRequest: Sendable, Equatable {
    public let userID: Int64

    public init(params: JSONObject) throws(AuthError) {
        userID = try params.requiredID("user_id")
    }
}

/// `session.revoke`: one session by `id`, or every session of `user_id`.
public enum RevokeSessionsRequest: Sendable, Equatable {
    case session(String)
    case user(Int64)

    public init(params: JSONObject) throws(AuthError) {
        if let sessionID = try params.optionalString("id") {
            self = .session(sessionID)
        } else if params["user_id"] != nil {
            self = .user(try params.requiredID("user_id"))
        } else {
            throw .invalidParams(field: "id", "id or user_id is required")
        }
    }
}

/// The opaque `user.list` cursor: the last id, base64url-encoded.
public enum UserCursor {
    public static func encode(_ id: Int64) -> String { Base64URL.encode(Array("u:\(id)".utf8)) }

    public static func decode(_ cursor: String) -> Int64? {
        guard let bytes = Base64URL.decode(cursor) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("u:"), let id = Int64(text.dropFirst(2)), id >= 0 else { return nil }
        return id
    }
}

/// `user.totp.reset`: the user whose second factor an admin removes.
public struct ResetSecondFactorRequest: Sendable, Equatable {
    public let id: Int64

    public init(params: JSONObject) throws(AuthError) {
        id = try params.requiredID("id")
    }
}
