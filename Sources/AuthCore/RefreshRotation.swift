/// What a presented refresh token leads to, decided from what the store
/// holds for it. Only a spent token of a live session is reuse; anything
/// else unusable is simply invalid.
public enum RefreshRotation {
    public struct TokenState: Sendable {
        public var spent: Bool
        public var expiresAt: Int64
        public init(spent: Bool, expiresAt: Int64) {
            self.spent = spent
            self.expiresAt = expiresAt
        }
    }

    public struct SessionState: Sendable {
        public var revoked: Bool
        public var expiresAt: Int64
        public var userActive: Bool
        public init(revoked: Bool, expiresAt: Int64, userActive: Bool) {
            self.revoked = revoked
            self.expiresAt = expiresAt
            self.userActive = userActive
        }
    }

    public enum Decision: Sendable, Equatable {
        case rotate
        case invalid(String)
        case reuse
    }

    public static func decide(token: TokenState?, session: SessionState?, now: Int64) -> Decision {
        guard let session else { return .invalid("no such session") }
        if session.revoked { return .invalid("session revoked") }
        if now >= session.expiresAt { return .invalid("session expired") }
        guard let token else { return .invalid("unknown token") }
        if token.spent { return .reuse }
        if now >= token.expiresAt { return .invalid("token expired") }
        if !session.userActive { return .invalid("account inactive") }
        return .rotate
    }
}
