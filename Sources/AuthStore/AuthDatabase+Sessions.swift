import AuthCore
import AuthServiceCore
import Foundation
import GRDB

private let insertRefreshToken =
    "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)"

extension AuthDatabase {
    /// Opens a session with its first refresh token (stored as a hash only),
    /// in one transaction with the checks of `guard`; returns the ids of the
    /// sessions revoked to keep the user under the session limit. Throws
    /// `credentialsChanged` when the user is no longer active or the
    /// password changed since it was checked.
    @discardableResult
    public func createSession(
        id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64,
        guard sessionGuard: SessionGuard = .none
    ) throws -> [String] {
        try write { db, changes in
            if let expected = sessionGuard.credentialGeneration {
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT active, credential_generation FROM users WHERE id = ?"),
                    arguments: [userID])
                guard let row, row["active"] as Bool, (row["credential_generation"] as Int64) == expected else {
                    throw StoreError.credentialsChanged
                }
            }
            var evicted: [String] = []
            if sessionGuard.maximumSessions < .max {
                let live =
                    try Int.fetchOne(
                        db.cachedStatement(
                            sql:
                                "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?"
                        ), arguments: [userID, now]) ?? 0
                if live >= sessionGuard.maximumSessions {
                    evicted = try String.fetchAll(
                        db.cachedStatement(
                            sql: """
                                SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
                                ORDER BY last_used_at, created_at, id LIMIT ?
                                """), arguments: [userID, now, live - sessionGuard.maximumSessions + 1])
                    for old in evicted {
                        try revokeSession(db, id: old, reason: "session_limit", now: now, changes: &changes)
                    }
                }
            }
            try insertSession(
                db, id: id, userID: userID, refreshHash: refreshHash, now: now, expiresAt: expiresAt, changes: &changes)
            return evicted
        }
    }

    /// The INSERTs of a session and its first refresh token (single
    /// creation and bulk import).
    func insertSession(
        _ db: Database, id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64,
        changes: inout [LiveView.Change]
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
                VALUES (?, ?, ?, ?, ?)
                """
        ).execute(arguments: [id, userID, now, now, expiresAt])
        try db.cachedStatement(sql: insertRefreshToken).execute(arguments: [Data(refreshHash), id, now, expiresAt])
        if expiresAt > now {
            changes.append(.addSession(id: id, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
        }
    }

    /// Spends the refresh token with hash `presented` and stores `next` in
    /// its place, in one transaction; or revokes the session on reuse. The
    /// spent row is deleted: a session keeps only its current token, and a
    /// validly signed token of a live session that is not the current one
    /// is reuse (the caller has checked the signature and claims), unless
    /// it was spent within `grace`'s window: then it is replayed, and the
    /// answer carries the successor kept for it.
    public func rotateRefreshToken(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64? = nil, next: [UInt8], now: Int64,
        expiresAt: Int64, grace: RefreshGrace? = nil
    ) throws -> RotationOutcome {
        try write { db, changes in
            let state = try refreshState(db, sessionID: sessionID, presented: presented)
            let current = state.token == nil ? try currentTokenIssuedAt(db, sessionID: sessionID) : nil
            switch RefreshRotation.decide(
                token: state.token, session: state.session, now: now, presentedIssuedAt: presentedIssuedAt,
                currentIssuedAt: current, grace: state.grace, graceWindow: grace?.window ?? 0)
            {
            case .invalid(let why):
                return .invalid(why)
            case .reuse:
                let userID = state.user!.id
                try revokeSession(db, id: sessionID, reason: "refresh token reuse", now: now, changes: &changes)
                return .reused(userID: userID)
            case .replay:
                try db.cachedStatement(sql: "UPDATE refresh_grace SET replays = replays + 1 WHERE session_id = ?")
                    .execute(arguments: [sessionID])
                return .replayed(state.user!, sealedNext: state.sealedNext!, expiresAt: state.session!.expiresAt)
            case .rotate:
                // The current row becomes the next token in place: the spent
                // one is gone, and the session index is left untouched.
                try db.cachedStatement(
                    sql: "UPDATE refresh_tokens SET token_hash = ?, issued_at = ?, expires_at = ? WHERE token_hash = ?"
                ).execute(arguments: [Data(next), now, expiresAt, Data(presented)])
                try db.cachedStatement(sql: "UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?")
                    .execute(arguments: [now, expiresAt, sessionID])
                if let grace {
                    try db.cachedStatement(
                        sql: """
                            INSERT OR REPLACE INTO refresh_grace
                                (session_id, spent_hash, next_hash, spent_at, kept_until, replays, sealed_next)
                            VALUES (?, ?, ?, ?, ?, 0, ?)
                            """
                    ).execute(arguments: [
                        sessionID, Data(presented), Data(next), now, now + grace.window, Data(grace.sealedNext),
                    ])
                }
                changes.append(.extendSession(id: sessionID, expiresAt: expiresAt))
                return .rotated(state.user!)
            }
        }
    }

    /// Revokes the session of a presented refresh token. A spent token of a
    /// live session is reuse all the same (the session is revoked either
    /// way), unless it was spent within `graceWindow` seconds.
    public func logout(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64? = nil, graceWindow: Int64 = 0, now: Int64
    ) throws -> LogoutOutcome {
        try write { db, changes in
            let state = try refreshState(db, sessionID: sessionID, presented: presented)
            let current = state.token == nil ? try currentTokenIssuedAt(db, sessionID: sessionID) : nil
            switch RefreshRotation.decideLogout(
                token: state.token, session: state.session, now: now, presentedIssuedAt: presentedIssuedAt,
                currentIssuedAt: current, grace: state.grace, graceWindow: graceWindow)
            {
            case .invalid(let why):
                return .invalid(why)
            case .reuse:
                try revokeSession(db, id: sessionID, reason: "refresh token reuse", now: now, changes: &changes)
                return .reused(userID: state.user!.id)
            case .revoke:
                try revokeSession(db, id: sessionID, reason: "logout", now: now, changes: &changes)
                return .revoked(userID: state.user!.id)
            }
        }
    }

    /// Deletes the successors kept past their window.
    public func sweepRefreshGrace(now: Int64) throws -> Int {
        try write { db, _ in
            try db.cachedStatement(sql: "DELETE FROM refresh_grace WHERE kept_until <= ?").execute(arguments: [now])
            return db.changesCount
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

    private func currentTokenIssuedAt(_ db: Database, sessionID: String) throws -> Int64? {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT MAX(issued_at) FROM refresh_tokens WHERE session_id = ?"),
            arguments: [sessionID])
    }

    /// What a rotation or logout decides on: the presented token if it is
    /// a session's current one, the session and its user, and the grace
    /// kept for the presented token if it was the session's last spent one.
    private struct RefreshState {
        var token: RefreshRotation.TokenState?
        var session: RefreshRotation.SessionState?
        var user: UserSnapshot?
        var grace: RefreshRotation.GraceState?
        var sealedNext: [UInt8]?
    }

    private func refreshState(_ db: Database, sessionID: String, presented: [UInt8]) throws -> RefreshState {
        var state = RefreshState()
        let tokenRow = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT session_id, expires_at, spent_at FROM refresh_tokens WHERE token_hash = ?"),
            arguments: [Data(presented)])
        let sessionRow = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT s.revoked_at, s.expires_at, u.id, u.email, u.role, u.active, u.created_at
                    FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?
                    """), arguments: [sessionID])
        if let tokenRow, (tokenRow["session_id"] as String) == sessionID {
            state.token = .init(spent: (tokenRow["spent_at"] as Int64?) != nil, expiresAt: tokenRow["expires_at"])
        }
        guard let sessionRow else { return state }
        let user = UserSnapshot(
            id: sessionRow["id"], email: sessionRow["email"], role: sessionRow["role"],
            active: sessionRow["active"], createdAt: sessionRow["created_at"])
        state.user = user
        state.session = RefreshRotation.SessionState(
            revoked: (sessionRow["revoked_at"] as Int64?) != nil, expiresAt: sessionRow["expires_at"],
            userActive: user.active)
        if state.token == nil,
            let graceRow = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT g.spent_at, g.kept_until, g.replays, g.sealed_next, EXISTS (
                            SELECT 1 FROM refresh_tokens t WHERE t.token_hash = g.next_hash AND t.session_id = g.session_id
                        ) AS successor_is_current
                        FROM refresh_grace g WHERE g.session_id = ? AND g.spent_hash = ?
                        """), arguments: [sessionID, Data(presented)])
        {
            state.grace = .init(
                spentAt: graceRow["spent_at"], keptUntil: graceRow["kept_until"], replays: graceRow["replays"],
                successorIsCurrent: graceRow["successor_is_current"])
            state.sealedNext = Array(graceRow["sealed_next"] as Data)
        }
        return state
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
        let revoked = db.changesCount
        changes.append(.removeSessions(userID: userID, keeping: keeping))
        // The kept session's grace too: after a password change, a spent
        // token of it (perhaps the reason for the change) is reuse.
        try db.cachedStatement(
            sql: "DELETE FROM refresh_grace WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?)"
        ).execute(arguments: [userID])
        return revoked
    }
}
