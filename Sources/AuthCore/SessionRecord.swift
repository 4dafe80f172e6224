/// A session as stored (admin views).
public struct SessionRecord: Sendable, Equatable {
    public var id: String
    public var userID: Int64
    public var createdAt: Int64
    public var lastUsedAt: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?

    public init(id: String, userID: Int64, createdAt: Int64, lastUsedAt: Int64, expiresAt: Int64, revokedAt: Int64?) {
        self.id = id
        self.userID = userID
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// The `session.list` shape.
    public var publicJSON: JSONValue {
        .object([
            "id": .string(id), "user_id": .string(String(userID)), "created_at": .int(createdAt),
            "last_used_at": .int(lastUsedAt), "expires_at": .int(expiresAt),
        ])
    }
}
