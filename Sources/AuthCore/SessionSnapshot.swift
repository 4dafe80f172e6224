/// A live session as the in-memory view holds it.
public struct SessionSnapshot: Sendable, Equatable {
    public var userID: Int64
    public var expiresAt: Int64

    public init(userID: Int64, expiresAt: Int64) {
        self.userID = userID
        self.expiresAt = expiresAt
    }
}
