import AuthProtocol

/// A refusal as the protocol states it: a JSON-RPC error `code`, a stable
/// `reason`, a human message that never carries internal details, and the
/// optional `field` and `retry_after`. The cause behind an internal error is
/// kept for the log only (`logDetail`), never sent.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let reason: Reason
    public let message: String
    public var field: String?
    public var retryAfter: Int?
    /// For the log only.
    public var logDetail: String?

    public init(code: Int, reason: Reason, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    public var description: String {
        "AuthError(\(code) \(reason.rawValue)\(field.map { " field=\($0)" } ?? ""))"
    }

    public static func == (lhs: AuthError, rhs: AuthError) -> Bool {
        lhs.code == rhs.code && lhs.reason == rhs.reason && lhs.field == rhs.field
            && lhs.retryAfter == rhs.retryAfter
    }

    /// Every `reason` of protocol v1 (the list lives in `AuthProtocol`).
    public typealias Reason = ErrorReason

    public static let parseError = AuthError(code: -32700, reason: .parseError, message: "Parse error")
    public static let invalidRequest = AuthError(
        code: -32600, reason: .invalidRequest, message: "Invalid request")
    public static let lineTooLong = AuthError(
        code: -32600, reason: .lineTooLong, message: "Request line too long")
    public static let batchNotSupported = AuthError(
        code: -32600, reason: .batchNotSupported, message: "Batch requests are not supported")
    public static let methodNotFound = AuthError(
        code: -32601, reason: .methodNotFound, message: "Method not found")
    public static func invalidParams(field: String, _ message: String = "Invalid params") -> AuthError {
        AuthError(code: -32602, reason: .invalidParams, message: message, field: field)
    }
    public static func invalidEmail(field: String = "email") -> AuthError {
        AuthError(code: -32602, reason: .invalidEmail, message: "Invalid email address", field: field)
    }
    public static func weakPassword(field: String) -> AuthError {
        AuthError(
            code: -32602, reason: .weakPassword, message: "Password must be at least 8 characters",
            field: field)
    }
    /// The limit is the configured scheme's (`Scheme.maximumPasswordBytes`).
    public static func passwordTooLong(field: String) -> AuthError {
        AuthError(
            code: -32602, reason: .passwordTooLong,
            message: "Password must be at most 72 bytes with bcrypt, 1024 with argon2id", field: field)
    }
    public static func internalError(_ detail: String) -> AuthError {
        var error = AuthError(code: -32603, reason: .internalError, message: "Internal error")
        error.logDetail = detail
        return error
    }
    public static let noToken = AuthError(code: 401, reason: .noToken, message: "No token provided")
    public static let invalidCredentials = AuthError(
        code: 401, reason: .invalidCredentials, message: "Invalid credentials")
    public static let tokenExpired = AuthError(code: 401, reason: .tokenExpired, message: "Token expired")
    public static let accountInactive = AuthError(
        code: 401, reason: .accountInactive, message: "Account inactive")
    public static let userNotFound = AuthError(code: 401, reason: .userNotFound, message: "User not found")
    public static let sessionRevoked = AuthError(
        code: 401, reason: .sessionRevoked, message: "Session revoked")
    public static let refreshInvalid = AuthError(
        code: 401, reason: .refreshInvalid, message: "Invalid refresh token")
    public static let tokenInvalid = AuthError(code: 403, reason: .tokenInvalid, message: "Invalid token")
    public static let forbidden = AuthError(code: 403, reason: .forbidden, message: "Forbidden")
    /// `user.totp.enroll` with a confirmed second factor: it is replaced
    /// only through `user.totp.disable` (which asks for a code of it).
    public static let secondFactorAlreadyEnabled = AuthError(
        code: 403, reason: .forbidden, message: "A second factor is already enabled; disable it first")
    public static let refreshReused = AuthError(
        code: 403, reason: .refreshReused, message: "Refresh token reuse detected; session revoked")
    public static let notFound = AuthError(code: 404, reason: .notFound, message: "Not found")
    public static let emailTaken = AuthError(code: 409, reason: .emailTaken, message: "Email already in use")
    public static func rateLimited(retryAfter: Int) -> AuthError {
        AuthError(
            code: 429, reason: .rateLimited, message: "Too many failed attempts", retryAfter: retryAfter)
    }
    public static func tooManyRefreshes(retryAfter: Int) -> AuthError {
        AuthError(code: 429, reason: .rateLimited, message: "Too many refreshes", retryAfter: retryAfter)
    }
    public static func busy(retryAfter: Int) -> AuthError {
        AuthError(code: 503, reason: .busy, message: "Server busy", retryAfter: retryAfter)
    }
    /// The database cannot be reached (or this daemon's view of it is older
    /// than `max_staleness`): nothing was done, try again.
    public static func unavailable(retryAfter: Int = 1) -> AuthError {
        AuthError(code: 503, reason: .unavailable, message: "Database unavailable", retryAfter: retryAfter)
    }

    /// The method exists but this daemon's store cannot do it (`sys.backup`
    /// on a shared PostgreSQL database); `message` says what to use instead.
    public static func unsupported(_ message: String) -> AuthError {
        AuthError(code: 501, reason: .unsupported, message: message)
    }

    public static let shuttingDown = AuthError(
        code: 503, reason: .shuttingDown, message: "Server shutting down", retryAfter: 1)

    /// The `error` member of a JSON-RPC response.
    public var wireObject: JSONValue {
        var data: JSONObject = ["reason": .string(reason.rawValue)]
        if let field { data["field"] = .string(field) }
        if let retryAfter { data["retry_after"] = .int(retryAfter) }
        return .object(["code": .int(code), "message": .string(message), "data": .object(data)])
    }
}
