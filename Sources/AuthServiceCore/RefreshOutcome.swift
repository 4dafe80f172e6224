import AuthCore

/// What presenting a refresh token to `auth.refresh` did.
public enum RotationOutcome: Sendable, Equatable {
    case rotated(UserSnapshot)
    /// A token spent within the grace window, presented again: the
    /// successor it was spent for (sealed, as stored) and when that one
    /// expires. Nothing rotated.
    case replayed(UserSnapshot, sealedNext: [UInt8], expiresAt: Int64)
    case invalid(String)
    /// A spent token of a live session: the session is now revoked.
    case reused(userID: Int64)
}

/// What presenting a refresh token to `auth.logout` did.
public enum LogoutOutcome: Sendable, Equatable {
    case revoked(userID: Int64)
    case invalid(String)
    case reused(userID: Int64)
}
