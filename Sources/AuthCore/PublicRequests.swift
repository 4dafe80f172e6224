import AuthCrypto

/// The params of the public methods, decoded in pure code: each init reads
/// exactly what its method needs and throws the protocol's error for the
/// first param that is missing, of the wrong type, or against the rules.

/// `auth.login`.
public struct LoginRequest: Sendable, Equatable {
    public let email: String
    public let password: String
    public let client: String?

    public init(params: JSONObject) throws(AuthError) {
        email = try params.requiredString("email")
        password = try params.requiredString("password")
        client = try params.optionalString("client")
        try PasswordPolicy.refuseNUL(password, field: "password")
        if let client, client.utf8.count > LoginThrottle.maximumClientBytes {
            throw .invalidParams(field: "client", "client must be at most 256 bytes")
        }
    }
}

/// `auth.refresh` and `auth.logout`: a refresh token.
public struct RefreshTokenRequest: Sendable, Equatable {
    public let refreshToken: String

    public init(params: JSONObject) throws(AuthError) {
        refreshToken = try params.bearerToken("refresh_token")
    }
}

/// `auth.logout_all` and `user.me`: an access token.
public struct AccessTokenRequest: Sendable, Equatable {
    public let accessToken: String

    public init(params: JSONObject) throws(AuthError) {
        accessToken = try params.bearerToken("access_token")
    }
}

/// `token.verify`.
public struct VerifyRequest: Sendable, Equatable {
    public let token: String
    public let requiredRole: String?

    public init(params: JSONObject) throws(AuthError) {
        token = try params.bearerToken("token")
        requiredRole = try params.optionalString("required_role")
    }
}

/// `user.change_password`. The access token is checked before the
/// passwords are looked at (the contract's error order).
public struct ChangePasswordRequest: Sendable, Equatable {
    public let currentPassword: String
    public let newPassword: String

    public init(params: JSONObject, scheme: PasswordHashing.Scheme = .bcrypt) throws(AuthError) {
        currentPassword = try params.requiredString("current_password")
        newPassword = try params.requiredString("new_password")
        try PasswordPolicy.refuseNUL(currentPassword, field: "current_password")
        try PasswordPolicy.validateNew(newPassword, field: "new_password", scheme: scheme)
    }
}
