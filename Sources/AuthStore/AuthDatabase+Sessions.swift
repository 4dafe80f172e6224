import AuthCore
import Foundation
import GRDB

private let insertRefreshToken =
    "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)"

extension AuthDatabase {
    /// Opens a session with its first refresh token (stored as a hash only).
    public func createSession(id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64)
        throws
    {
        try write { db, changes in
            try db.cachedStatement(
                sql: """
                    INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [id, userID, now, now, expiresAt])
            try db.cachedStatement(sql: insertRefreshToken).execute(
                arguments: [Data(refreshHash), id, now, expiresAt])
            changes.append(.addSession(id: id, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
        }
    }

    public enum RotationOutcome: Sendable, Equatable {
        case rotated(UserSnapshot)
        case invalid(String)
        /// A spent token of a live session: the session is now revoked.
        case reused(userID: Int64)
    }

    /// Spends the refresh token with hash `presented` and stores `next` in
    /// its place, in one transaction; or revokes the session on reuse.
    public func rotateRefreshToken(
        sessionID: String, presented: [UInt8], next: [UInt8], now: Int64, expiresAt: Int64
    ) throws -> RotationOutcome {
        try write { db, changes in
            let (token, session, user) = try refreshState(db, sessionID: sessionID, presented: presented)
            switch RefreshRotation.decide(token: token, session: session, now: now) {
            case .invalid(let why):
                return .invalid(why)
            case .reuse:
                let userID = user!.id
                try revokeSession(db, id: sessionID, reason: "refresh token reuse", now: now, changes: &changes)
                return .reused(userID: userID)
            case .rotate:
                try db.cachedStatement(sql: "UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ?").execute(
                    arguments: [now, Data(presented)])
                try db.cachedStatement(sql: insertRefreshToken).execute(
                    arguments: [Data(next), sessionID, now, expiresAt])
                try db.cachedStatement(sql: "UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?")
                    .execute(arguments: [now, expiresAt, sessionID])
                changes.append(.extendSession(id: sessionID, expiresAt: expiresAt))
                return .rotated(user!)
            }
        }
    }

    public enum LogoutOutcome: Sendable, Equatable {
        case revoked(userID: Int64)
        case invalid(String)
        case reused(userID: Int64)
    }

    /// Revokes the session of a presented refresh token. A spent token of a
    /// live session is reuse all the same (the session is revoked either way).
    public func logout(sessionID: String, presented: [UInt8], now: Int64) throws -> LogoutOutcome {
        try write { db, changes in
            let (token, session, user) = try refreshState(db, sessionID: sessionID, presented: presented)
            switch RefreshRotation.decide(token: token, session: session, now: now) {
            case .invalid(let why) where token == nil || session == nil || session!.revoked:
                return .invalid(why)
            case .reuse:
                try revokeSession(db, id: sessionID, reason: "refresh token reuse", now: now, changes: &changes)
                return .reused(userID: user!.id)
            case .invalid, .rotate:
                // Expired token or inactive user: logging out is still allowed.
                try revokeSession(db, id: sessionID, reason: "logout", now: now, changes: &changes)
                return .revoked(userID: user!.id)
            }
        }
    }

    /// Revokes one session; false when there is no such live session.
    public func revokeSession(id: String, reason: String, now: Int64) throws -> Bool {
        try write { db, changes in
            try revokeSession(db, id: id, reason: reason, now: now, changes: &changes) > 0
        }
    }

    /// Whether a session with this id exists at all (live or not).
    public func sessionExists(id: String) throws -> Bool {
        try read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM sessions WHERE id = ?", arguments: [id]) ?? false }
    }

    public func revokeSessions(userID: Int64, keeping: String?, reason: String, now: Int64) throws -> Int {
        try write { db, changes in
            try revokeSessions(db, userID: userID, keeping: keeping, reason: reason, now: now, changes: &changes)
        }
    }

    /// Live sessions (not revoked, not expired) of a user, newest first.
    public func liveSessions(userID: Int64, now: Int64) throws -> [SessionRecord] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
                    ORDER BY created_at DESC, id
                    """, arguments: [userID, now])
        }.map { row in
            SessionRecord(
                id: row["id"], userID: row["user_id"], createdAt: row["created_at"],
                lastUsedAt: row["last_used_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
        }
    }

    // MARK: Inside transactions

    private func refreshState(_ db: Database, sessionID: String, presented: [UInt8]) throws -> (
        RefreshRotation.TokenState?, RefreshRotation.SessionState?, UserSnapshot?
    ) {
        let tokenRow = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT session_id, expires_at, spent_at FROM refresh_tokens WHERE token_hash = ?"),
            arguments: [Data(presented)])
        let sessionRow = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT s.revoked_at, s.expires_at, u.id, u.email, u.role, u.active, u.created_at
                    FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?
                    """), arguments: [sessionID])
        var token: RefreshRotation.TokenState?
        if let tokenRow, (tokenRow["session_id"] as String) == sessionID {
            token = .init(spent: (tokenRow["spent_at"] as Int64?) != nil, expiresAt: tokenRow["expires_at"])
        }
        guard let sessionRow else { return (token, nil, nil) }
        let user = UserSnapshot(
            id: sessionRow["id"], email: sessionRow["email"], role: sessionRow["role"],
            active: sessionRow["active"], createdAt: sessionRow["created_at"])
        let session = RefreshRotation.SessionState(
            revoked: (sessionRow["revoked_at"] as Int64?) != nil, expiresAt: sessionRow["expires_at"],
            userActive: user.active)
        return (token, session, user)
    }

    @discardableResult
    func revokeSession(_ db: Database, id: String, reason: String, now: Int64, changes: inout [LiveView.Change])
        throws -> Int
    {
        try db.cachedStatement(
            sql: "UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL"
        ).execute(arguments: [now, reason, id])
        changes.append(.removeSession(id: id))
        return db.changesCount
    }

    @discardableResult
    func revokeSessions(
        _ db: Database, userID: Int64, keeping: String?, reason: String, now: Int64,
        changes: inout [LiveView.Change]
    ) throws -> Int {
        try db.cachedStatement(
            sql: """
                UPDATE sessions SET revoked_at = ?, revoke_reason = ?
                WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND id IS NOT ?
                """
        ).execute(arguments: [now, reason, userID, now, keeping])
        changes.append(.removeSessions(userID: userID, keeping: keeping))
        return db.changesCount
    }
}
