/// What a presented refresh token leads to, decided from what the store
/// holds for it. The store keeps only each session's current token, so a
/// (validly signed) token of a live session that the store does not hold,
/// or holds as spent, is reuse; anything else unusable is simply invalid.
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

    public enum LogoutDecision: Sendable, Equatable {
        /// Revoke the session: logged out.
        case revoke
        case invalid(String)
        /// Reuse: the session is revoked all the same, and it is reported.
        case reuse
    }

    /// Logging out needs less than refreshing: an expired token or session,
    /// or an inactive user, may still log out; only a session that is gone
    /// or already revoked is invalid, and reuse is reuse.
    public static func decideLogout(
        token: TokenState?, session: SessionState?, now: Int64, presentedIssuedAt: Int64? = nil,
        currentIssuedAt: Int64? = nil
    ) -> LogoutDecision {
        switch decide(
            token: token, session: session, now: now, presentedIssuedAt: presentedIssuedAt,
            currentIssuedAt: currentIssuedAt)
        {
        case .invalid(let why) where session == nil || session!.revoked: .invalid(why)
        case .reuse: .reuse
        case .invalid, .rotate: .revoke
        }
    }

    /// `presentedIssuedAt` is the presented token's `iat`, `currentIssuedAt`
    /// when the store's current token of the session was issued: a token
    /// issued after the current one was never spent here (the store lost the
    /// rotation that issued it, as after a power loss or a backup restore),
    /// so it is invalid, not reuse, and the session is not revoked for it.
    public static func decide(
        token: TokenState?, session: SessionState?, now: Int64, presentedIssuedAt: Int64? = nil,
        currentIssuedAt: Int64? = nil
    ) -> Decision {
        guard let session else { return .invalid("no such session") }
        if session.revoked { return .invalid("session revoked") }
        if now >= session.expiresAt { return .invalid("session expired") }
        if token == nil, let presentedIssuedAt, let currentIssuedAt, presentedIssuedAt > currentIssuedAt {
            return .invalid("token newer than the session's current one")
        }
        guard let token, !token.spent else { return .reuse }
        if now >= token.expiresAt { return .invalid("token expired") }
        if !session.userActive { return .invalid("account inactive") }
        return .rotate
    }
}
