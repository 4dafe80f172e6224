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

    /// What the store holds about a token that was spent within the grace
    /// window (`refresh_grace`), when the presented token is that one.
    public struct GraceState: Sendable {
        /// When it was spent, and until when its successor is kept (the
        /// window in force then).
        public var spentAt: Int64
        public var keptUntil: Int64
        /// How often it has been presented again since.
        public var replays: Int
        /// Whether the token it was spent for is still the session's
        /// current one: once that successor has been used, the spent token
        /// is never graced again.
        public var successorIsCurrent: Bool
        public init(spentAt: Int64, keptUntil: Int64, replays: Int, successorIsCurrent: Bool) {
            self.spentAt = spentAt
            self.keptUntil = keptUntil
            self.replays = replays
            self.successorIsCurrent = successorIsCurrent
        }
    }

    /// How often a spent token may be presented again within its window.
    public static let maximumReplays = 3

    public enum Decision: Sendable, Equatable {
        case rotate
        /// The token was spent within the grace window: answer with the
        /// successor it was spent for, rotating nothing.
        case replay
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
    /// A token graced for a refresh logs its session out (its client may
    /// not have received the successor), without a reuse alarm.
    public static func decideLogout(
        token: TokenState?, session: SessionState?, now: Int64, presentedIssuedAt: Int64? = nil,
        currentIssuedAt: Int64? = nil, grace: GraceState? = nil, graceWindow: Int64 = 0
    ) -> LogoutDecision {
        switch decide(
            token: token, session: session, now: now, presentedIssuedAt: presentedIssuedAt,
            currentIssuedAt: currentIssuedAt, grace: grace, graceWindow: graceWindow)
        {
        case .invalid(let why) where session == nil || session!.revoked: .invalid(why)
        case .reuse: .reuse
        case .invalid, .rotate, .replay: .revoke
        }
    }

    /// `presentedIssuedAt` is the presented token's `iat`, `currentIssuedAt`
    /// when the store's current token of the session was issued: a token
    /// issued after the current one was never spent here (the store lost the
    /// rotation that issued it, as after a power loss or a backup restore),
    /// so it is invalid, not reuse, and the session is not revoked for it.
    ///
    /// `grace` is what the store holds about the presented token if it was
    /// the session's last spent one, and `graceWindow` the window's length
    /// now (`refresh_grace` seconds, 0 for none). Such a token was spent
    /// here, whatever its `iat` says (another host's clock may run ahead),
    /// so it is a replay (RFC 9700 4.14.2) while it is within the window
    /// (the shorter of the one it was spent under and the one now),
    /// presented at most `maximumReplays` times, and its successor unused;
    /// otherwise it is reuse.
    public static func decide(
        token: TokenState?, session: SessionState?, now: Int64, presentedIssuedAt: Int64? = nil,
        currentIssuedAt: Int64? = nil, grace: GraceState? = nil, graceWindow: Int64 = 0
    ) -> Decision {
        guard let session else { return .invalid("no such session") }
        if session.revoked { return .invalid("session revoked") }
        if now >= session.expiresAt { return .invalid("session expired") }
        if token == nil || token!.spent, let grace {
            // A host whose clock is behind the one that spent the token sees
            // it spent "in the future": still within the window.
            let within = graceWindow > 0 && now < min(grace.keptUntil, grace.spentAt + graceWindow)
            let graced =
                within && grace.replays < maximumReplays && grace.successorIsCurrent && session.userActive
            return graced ? .replay : .reuse
        }
        if token == nil, let presentedIssuedAt, let currentIssuedAt, presentedIssuedAt > currentIssuedAt {
            return .invalid("token newer than the session's current one")
        }
        guard let token, !token.spent else { return .reuse }
        if now >= token.expiresAt { return .invalid("token expired") }
        if !session.userActive { return .invalid("account inactive") }
        return .rotate
    }
}
