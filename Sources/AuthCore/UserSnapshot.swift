/// What the daemon keeps in memory about a user (never the hash), and its
/// wire shapes. Ids travel as strings, as in the `sub` claim.
public struct UserSnapshot: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var role: String
    public var active: Bool
    public var createdAt: Int64

    public init(id: Int64, email: String, role: String, active: Bool, createdAt: Int64) {
        self.id = id
        self.email = email
        self.role = role
        self.active = active
        self.createdAt = createdAt
    }

    /// `{"id","email","role"}` as in login and verify results.
    public var briefJSON: JSONValue {
        // Members built directly: a dictionary literal allocates its list twice.
        .object(
            JSONObject([
                JSONMember(key: "id", value: .string(String(id))), JSONMember(key: "email", value: .string(email)),
                JSONMember(key: "role", value: .string(role)),
            ]))
    }

    /// The full public user (`user.me`, admin methods).
    public var publicJSON: JSONValue {
        .object([
            "id": .string(String(id)), "email": .string(email), "role": .string(role),
            "active": .bool(active), "created_at": .int(createdAt),
        ])
    }
}
