import AuthProtocol

/// Why a call failed: one case per protocol `reason` (the daemon's own list,
/// `AuthProtocol.ErrorReason`), so callers can write
/// `catch AuthError.tokenExpired`, plus the client's own failures
/// (`unreachable`, `timeout`, `badResponse`). A reason that a newer daemon
/// sends and this client does not know is `other`, never a decoding failure.
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
    /// The daemon's database (PostgreSQL, shared by several hosts) cannot
    /// be reached, or this daemon has been cut off from it for longer than
    /// its `max_staleness`: nothing was done.
    case unavailable(retryAfter: Int?)
    /// The method exists but this daemon's store cannot do it (`sys.backup`
    /// on PostgreSQL: back the database up with `pg_dump`).
    case unsupported

    /// Not a refusal: the password was right, and the account has a second
    /// factor. Pass `mfaToken` (valid `expiresIn` seconds, single-use) with
    /// the user's current code to ``AuthClient/mfa(token:code:client:)``.
    case secondFactorRequired(mfaToken: String, expiresIn: Int64)

    // The client's own failures.
    /// The socket could not be opened or broke; the next call reconnects.
    case unreachable(String)
    /// No answer within the call's timeout.
    case timeout
    /// The daemon answered something this client does not understand.
    case badResponse(String)
    /// A refusal with a `reason` this version of the client does not know
    /// (from a newer daemon), with its JSON-RPC code.
    case other(reason: String, code: Int64?, retryAfter: Int?)

    /// Maps a protocol error object (`code`, `message`, `data.reason`, …).
    init(code: Int64?, reason: String?, field: String?, retryAfter: Int?) {
        guard let reason else {
            self = .badResponse("error \(code.map(String.init) ?? "?") without a reason")
            return
        }
        guard let known = ErrorReason(rawValue: reason) else {
            self = .other(reason: reason, code: code, retryAfter: retryAfter)
            return
        }
        // Exhaustive: a reason added to the protocol's list must be mapped here.
        switch known {
        case .parseError: self = .parseError
        case .invalidRequest, .lineTooLong, .batchNotSupported: self = .invalidRequest(reason: reason)
        case .methodNotFound: self = .methodNotFound
        case .invalidParams: self = .invalidParams(field: field)
        case .invalidEmail: self = .invalidEmail
        case .weakPassword: self = .weakPassword(field: field)
        case .passwordTooLong: self = .passwordTooLong(field: field)
        case .internalError: self = .internalError
        case .noToken: self = .noToken
        case .invalidCredentials: self = .invalidCredentials
        case .tokenExpired: self = .tokenExpired
        case .accountInactive: self = .accountInactive
        case .userNotFound: self = .userNotFound
        case .sessionRevoked: self = .sessionRevoked
        case .refreshInvalid: self = .refreshInvalid
        case .tokenInvalid: self = .tokenInvalid
        case .forbidden: self = .forbidden
        case .refreshReused: self = .refreshReused
        case .notFound: self = .notFound
        case .emailTaken: self = .emailTaken
        case .rateLimited: self = .rateLimited(retryAfter: retryAfter)
        case .busy: self = .busy(retryAfter: retryAfter)
        case .shuttingDown: self = .shuttingDown(retryAfter: retryAfter)
        case .unavailable: self = .unavailable(retryAfter: retryAfter)
        case .unsupported: self = .unsupported
        }
    }

    /// Seconds to wait before retrying, for `rateLimited`, `busy`, `shuttingDown` and `unavailable`.
    public var retryAfter: Int? {
        switch self {
        case .rateLimited(let seconds), .busy(let seconds), .shuttingDown(let seconds), .unavailable(let seconds):
            seconds
        case .other(_, _, let seconds): seconds
        default: nil
        }
    }

    /// The protocol's `reason` for this error (`nil` for the client's own failures).
    public var reason: String? {
        let known: ErrorReason
        switch self {
        case .parseError: known = .parseError
        case .invalidRequest(let reason): return reason
        case .methodNotFound: known = .methodNotFound
        case .invalidParams: known = .invalidParams
        case .invalidEmail: known = .invalidEmail
        case .weakPassword: known = .weakPassword
        case .passwordTooLong: known = .passwordTooLong
        case .internalError: known = .internalError
        case .noToken: known = .noToken
        case .invalidCredentials: known = .invalidCredentials
        case .tokenExpired: known = .tokenExpired
        case .accountInactive: known = .accountInactive
        case .userNotFound: known = .userNotFound
        case .sessionRevoked: known = .sessionRevoked
        case .refreshInvalid: known = .refreshInvalid
        case .tokenInvalid: known = .tokenInvalid
        case .forbidden: known = .forbidden
        case .refreshReused: known = .refreshReused
        case .notFound: known = .notFound
        case .emailTaken: known = .emailTaken
        case .rateLimited: known = .rateLimited
        case .busy: known = .busy
        case .shuttingDown: known = .shuttingDown
        case .unavailable: known = .unavailable
        case .unsupported: known = .unsupported
        case .other(let reason, _, _): return reason
        case .unreachable, .timeout, .badResponse, .secondFactorRequired: return nil
        }
        return known.rawValue
    }
}
