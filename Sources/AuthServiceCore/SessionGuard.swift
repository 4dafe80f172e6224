/// What opening a session needs to hold at the moment it commits.
public struct SessionGuard: Sendable, Equatable {
    /// The user must be active with this credential generation (the one
    /// the login checked the password against); `nil`: not checked.
    public var credentialGeneration: Int64?
    /// At most this many live sessions per user: the least recently
    /// used ones are revoked to make room.
    public var maximumSessions: Int

    public init(credentialGeneration: Int64?, maximumSessions: Int) {
        self.credentialGeneration = credentialGeneration
        self.maximumSessions = maximumSessions
    }

    /// No checks: any user, no session limit (tools and tests).
    public static let none = SessionGuard(credentialGeneration: nil, maximumSessions: .max)
}
