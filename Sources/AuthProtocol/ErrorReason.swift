/// Every `error.data.reason` of protocol v1: the one list that the daemon
/// (`AuthCore.AuthError`) and the client library (`AuthClient.AuthError`)
/// both use. A small target with no crypto and no I/O, so the client
/// library carries no more than it needs.
public enum ErrorReason: String, CaseIterable, Sendable {
    case parseError = "parse_error"
    case invalidRequest = "invalid_request"
    case lineTooLong = "line_too_long"
    case batchNotSupported = "batch_not_supported"
    case methodNotFound = "method_not_found"
    case invalidParams = "invalid_params"
    case invalidEmail = "invalid_email"
    case weakPassword = "weak_password"
    case passwordTooLong = "password_too_long"
    case internalError = "internal_error"
    case noToken = "no_token"
    case invalidCredentials = "invalid_credentials"
    case tokenExpired = "token_expired"
    case accountInactive = "account_inactive"
    case userNotFound = "user_not_found"
    case sessionRevoked = "session_revoked"
    case refreshInvalid = "refresh_invalid"
    case tokenInvalid = "token_invalid"
    case forbidden = "forbidden"
    case refreshReused = "refresh_reused"
    case notFound = "not_found"
    case emailTaken = "email_taken"
    case rateLimited = "rate_limited"
    case busy = "busy"
    case shuttingDown = "shutting_down"
    case unavailable = "unavailable"
    case unsupported = "unsupported"
}
