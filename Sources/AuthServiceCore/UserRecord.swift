import AuthCore

/// A user as stored, password hash included; `publicJSON` leaves it out.
public struct UserRecord: Sendable, Equatable {
    public init(
        id: Int64, email: String, passwordHash: String, role: String, active: Bool, createdAt: Int64,
        updatedAt: Int64, credentialGeneration: Int64 = 0, mfaEnabled: Bool = false
    ) {
        self.id = id
        self.email = email
        self.passwordHash = passwordHash
        self.role = role
        self.active = active
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.credentialGeneration = credentialGeneration
        self.mfaEnabled = mfaEnabled
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
    /// A confirmed second factor: a right password alone opens no session.
    public var mfaEnabled = false

    /// Applies an admin's `user.update` at `now`. Returns whether it
    /// deactivated the account: then the credential generation has moved
    /// (a login in flight cannot open a session) and the store must revoke
    /// every session of the user in the same transaction.
    public mutating func applyUpdate(role: String?, email: String?, active: Bool?, now: Int64) -> Bool {
        if let role { self.role = role }
        if let email { self.email = email }
        let deactivating = active == false && self.active
        if let active { self.active = active }
        updatedAt = now
        if deactivating { credentialGeneration += 1 }
        return deactivating
    }

    /// The public user with `mfa_enabled` (admin methods, `user.me`).
    public var publicJSON: JSONValue {
        guard case .object(var object) = snapshot.publicJSON else { return snapshot.publicJSON }
        object["mfa_enabled"] = .bool(mfaEnabled)
        return .object(object)
    }

    public var snapshot: UserSnapshot {
        UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt)
    }
}
