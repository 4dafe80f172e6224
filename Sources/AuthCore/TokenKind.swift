/// The two kinds of JWT authd mints; each has its own key and `typ`, so
/// one can never be accepted as the other.
public enum TokenKind: Sendable {
    case access
    case refresh

    public var typ: String {
        switch self {
        case .access: "at+jwt"
        case .refresh: "refresh+jwt"
        }
    }
}

/// How tokens are checked: issuer, audience and clock leeway.
public struct TokenPolicy: Sendable {
    public var issuer: String
    public var audience: String
    public var leeway: Int64
    /// Tokens longer than this are refused before any decoding.
    public var maximumTokenBytes: Int

    public init(issuer: String, audience: String, leeway: Int64, maximumTokenBytes: Int = 8192) {
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.maximumTokenBytes = maximumTokenBytes
    }
}

/// Why a token was refused. Maps to `token_invalid` / `token_expired` for
/// access tokens and to `refresh_invalid` for refresh tokens; the detail
/// goes to the security log.
public enum TokenFailure: Error, Sendable, Equatable {
    case malformed(String)
    case badHeader(String)
    case unknownKey
    case badSignature
    case badClaims(String)
    case expired

    public var logReason: String {
        switch self {
        case .malformed(let detail): "malformed: \(detail)"
        case .badHeader(let detail): "bad header: \(detail)"
        case .unknownKey: "unknown kid"
        case .badSignature: "bad signature"
        case .badClaims(let detail): "bad claims: \(detail)"
        case .expired: "expired"
        }
    }

    public var accessError: AuthError { self == .expired ? .tokenExpired : .tokenInvalid }
}
