import AuthCore
import AuthServiceCore
import GRDB

/// Bulk import: many users or sessions in one transaction, through the same
/// statements as single creation (benchmarks seed large states with it, and
/// a migration from another system would). Refusals are those of creation:
/// a taken email aborts the whole import, leaving nothing written.
extension AuthDatabase {
    /// A session to import with the hash of its current refresh token.
    public struct ImportedSession: Sendable {
        public var id: String
        public var userID: Int64
        public var refreshHash: [UInt8]

        public init(id: String, userID: Int64, refreshHash: [UInt8]) {
            self.id = id
            self.userID = userID
            self.refreshHash = refreshHash
        }
    }

    /// Adds active users sharing one password hash; returns their ids, in order.
    public func importUsers(emails: [String], passwordHash: String, role: String = "user", now: Int64) throws
        -> [Int64]
    {
        try write { db, changes in
            try emails.map { email in
                try insertUser(
                    db, email: email, passwordHash: passwordHash, role: role, active: true, now: now,
                    changes: &changes
                ).id
            }
        }
    }

    /// Opens sessions (no session limit is applied), each with its first
    /// refresh token, created at `now` and ending at `expiresAt`.
    public func importSessions(_ sessions: [ImportedSession], now: Int64, expiresAt: Int64) throws {
        try write { db, changes in
            for session in sessions {
                try insertSession(
                    db, id: session.id, userID: session.userID, refreshHash: session.refreshHash, now: now,
                    expiresAt: expiresAt, changes: &changes)
            }
        }
    }
}
