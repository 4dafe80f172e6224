/// Why a call failed: one case per protocol `reason`, so callers can write
/// `catch AuthError.tokenExpired`, plus the client's own failures
/// (`unreachable`, `timeout`, `badResponse`).
public enum AuthError: Error, Sendable, Equatable {
    // Requests the daemon could not read or route.
    case parseError
    case invalidRequest(reason: String)
    case methodNotFound
    /// Missing or malformed params; `field` names the param.
    case invalidParams(field: String?)
    case invalidEmail
    case weakPassword(field: String?)
    case passwordTooLong(field: String?)
    case internalError

    // Authentication.
    case noToken
    case invalidCredentials
    case tokenExpired
    case accountInactive
    case userNotFound
    case sessionRevoked
    case refreshInvalid

    // Refusals.
    case tokenInvalid
    case forbidden
    case refreshReused
    case notFound
    case emailTaken

    // Back off and retry after the given number of seconds.
    case rateLimited(retryAfter: Int?)
    case busy(retryAfter: Int?)
    case shuttingDown(retryAfter: Int?)

    // The client's own failures.
    /// The socket could not be opened or broke; the next call reconnects.
    case unreachable(String)
    /// No answer within the call's timeout.
    case timeout
    /// The daemon answered something this client does not understand.
    case badResponse(String)

    /// Maps a protocol error object (`code`, `message`, `data.reason`, …).
    init(code: Int64?, reason: String?, field: String?, retryAfter: Int?) {
        switch reason {
        case "parse_error": self = .parseError
        case "invalid_request", "line_too_long", "batch_not_supported": self = .invalidRequest(reason: reason!)
        case "method_not_found": self = .methodNotFound
        case "invalid_params": self = .invalidParams(field: field)
        case "invalid_email": self = .invalidEmail
        case "weak_password": self = .weakPassword(field: field)
        case "password_too_long": self = .passwordTooLong(field: field)
        case "internal_error": self = .internalError
        case "no_token": self = .noToken
        case "invalid_credentials": self = .invalidCredentials
        case "token_expired": self = .tokenExpired
        case "account_inactive": self = .accountInactive
        case "user_not_found": self = .userNotFound
        case "session_revoked": self = .sessionRevoked
        case "refresh_invalid": self = .refreshInvalid
        case "token_invalid": self = .tokenInvalid
        case "forbidden": self = .forbidden
        case "refresh_reused": self = .refreshReused
        case "not_found": self = .notFound
        case "email_taken": self = .emailTaken
        case "rate_limited": self = .rateLimited(retryAfter: retryAfter)
        case "busy": self = .busy(retryAfter: retryAfter)
        case "shutting_down": self = .shuttingDown(retryAfter: retryAfter)
        default: self = .badResponse("error \(code.map(String.init) ?? "?") with reason \(reason ?? "none")")
        }
    }

    /// Seconds to wait before retrying, for `rateLimited`, `busy` and `shuttingDown`.
    public var retryAfter: Int? {
        switch self {
        case .rateLimited(let seconds), .busy(let seconds), .shuttingDown(let seconds): seconds
        default: nil
        }
    }

    /// The protocol's `reason` for this error (`nil` for the client's own failures).
    public var reason: String? {
        switch self {
        case .parseError: "parse_error"
        case .invalidRequest(let reason): reason
        case .methodNotFound: "method_not_found"
        case .invalidParams: "invalid_params"
        case .invalidEmail: "invalid_email"
        case .weakPassword: "weak_password"
        case .passwordTooLong: "password_too_long"
        case .internalError: "internal_error"
        case .noToken: "no_token"
        case .invalidCredentials: "invalid_credentials"
        case .tokenExpired: "token_expired"
        case .accountInactive: "account_inactive"
        case .userNotFound: "user_not_found"
        case .sessionRevoked: "session_revoked"
        case .refreshInvalid: "refresh_invalid"
        case .tokenInvalid: "token_invalid"
        case .forbidden: "forbidden"
        case .refreshReused: "refresh_reused"
        case .notFound: "not_found"
        case .emailTaken: "email_taken"
        case .rateLimited: "rate_limited"
        case .busy: "busy"
        case .shuttingDown: "shutting_down"
        case .unreachable, .timeout, .badResponse: nil
        }
    }
}
