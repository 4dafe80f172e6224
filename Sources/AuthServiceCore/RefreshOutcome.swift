import AuthCore

/// What presenting a refresh token to `auth.refresh` did.
public enum RotationOutcome: Sendable, Equatable {
    case rotated(UserSnapshot)
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
