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

/// A second-factor code param: a six-digit TOTP code or a recovery code,
/// as typed (spaces and dashes are the checker's business), bounded.
enum SecondFactorCode {
    static let maximumBytes = 64

    static func parse(_ params: JSONObject) throws(AuthError) -> String {
        let code = try params.requiredString("code")
        guard !code.isEmpty, code.utf8.count <= maximumBytes else {
            throw .invalidParams(field: "code", "code must be 1 to 64 bytes")
        }
        return code
    }
}

/// `user.totp.enroll`: the access token and the current password.
public struct EnrollSecondFactorRequest: Sendable, Equatable {
    public let accessToken: String
    public let currentPassword: String

    public init(params: JSONObject) throws(AuthError) {
        accessToken = try params.requiredString("access_token")
        currentPassword = try params.requiredString("current_password")
        try PasswordPolicy.refuseNUL(currentPassword, field: "current_password")
    }
}

/// `user.totp.confirm`: the access token and a code of the new secret.
public struct ConfirmSecondFactorRequest: Sendable, Equatable {
    public let accessToken: String
    public let code: String

    public init(params: JSONObject) throws(AuthError) {
        accessToken = try params.requiredString("access_token")
        code = try SecondFactorCode.parse(params)
    }
}

/// `user.totp.disable` and `user.totp.recovery_codes`: the access token,
/// the current password and a code (or a recovery code).
public struct SecondFactorChangeRequest: Sendable, Equatable {
    public let accessToken: String
    public let currentPassword: String
    public let code: String

    public init(params: JSONObject) throws(AuthError) {
        accessToken = try params.requiredString("access_token")
        currentPassword = try params.requiredString("current_password")
        try PasswordPolicy.refuseNUL(currentPassword, field: "current_password")
        code = try SecondFactorCode.parse(params)
    }
}

/// `auth.mfa`: the token of a login's right password, a code (or a
/// recovery code), and the optional `client` of `auth.login`.
public struct MFARequest: Sendable, Equatable {
    public let mfaToken: String
    public let code: String
    public let client: String?

    public init(params: JSONObject) throws(AuthError) {
        mfaToken = try params.requiredString("mfa_token")
        code = try SecondFactorCode.parse(params)
        client = try params.optionalString("client")
        if let client, client.utf8.count > LoginThrottle.maximumClientBytes {
            throw .invalidParams(field: "client", "client must be at most 256 bytes")
        }
    }
}
