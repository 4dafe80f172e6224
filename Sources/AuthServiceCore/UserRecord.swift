import AuthCore

/// A user as stored, password hash included; `publicJSON` leaves it out.
public struct UserRecord: Sendable, Equatable {
    public init(
        id: Int64, email: String, passwordHash: String, role: String, active: Bool, createdAt: Int64,
        updatedAt: Int64, credentialGeneration: Int64 = 0
    ) {
        self.id = id
        self.email = email
        self.passwordHash = passwordHash
        self.role = role
        self.active = active
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.credentialGeneration = credentialGeneration
    }

    public var id: Int64
    public var email: String
    public var passwordHash: String
    public var role: String
    public var active: Bool
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Moves whenever the credentials that a login checks change (password
    /// set or changed, account deactivated); not on a cost-raise rehash. A
    /// login opens its session only if it has not moved since the hash was
    /// checked.
    public var credentialGeneration: Int64 = 0

    public var snapshot: UserSnapshot {
        UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt)
    }
}
