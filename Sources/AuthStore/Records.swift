import AuthCore

/// A user as stored, password hash included; `publicJSON` leaves it out.
public struct UserRecord: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var passwordHash: String
    public var role: String
    public var active: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public var snapshot: UserSnapshot {
        UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt)
    }
}

/// What the daemon keeps in memory about a user: never the hash.
public struct UserSnapshot: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var role: String
    public var active: Bool
    public var createdAt: Int64

    /// `{"id","email","role"}` as in login and verify results.
    public var briefJSON: JSONValue {
        .object(["id": .string(String(id)), "email": .string(email), "role": .string(role)])
    }

    /// The full public user (`user.me`, admin methods).
    public var publicJSON: JSONValue {
        .object([
            "id": .string(String(id)), "email": .string(email), "role": .string(role),
            "active": .bool(active), "created_at": .int(createdAt),
        ])
    }
}

/// A live session as the in-memory view holds it.
public struct SessionSnapshot: Sendable, Equatable {
    public var userID: Int64
    public var expiresAt: Int64
}

public struct SessionRecord: Sendable, Equatable {
    public var id: String
    public var userID: Int64
    public var createdAt: Int64
    public var lastUsedAt: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?

    public var publicJSON: JSONValue {
        .object([
            "id": .string(id), "user_id": .string(String(userID)), "created_at": .int(createdAt),
            "last_used_at": .int(lastUsedAt), "expires_at": .int(expiresAt),
        ])
    }
}

/// Failures of the store that the protocol names; anything else from
/// SQLite surfaces as its own error and becomes `internal_error`.
public enum StoreError: Error, Sendable, Equatable {
    case emailTaken
    case notFound
}
