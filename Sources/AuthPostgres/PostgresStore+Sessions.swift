import AuthCore
import AuthServiceCore
import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    public func createSession(
        id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64, guard sessionGuard: SessionGuard,
        _ done: @escaping StoreCompletion<[String]>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                // The user's row lock orders every session opened for it, on
                // every daemon: the guard and the limit hold across hosts.
                var user: (active: Bool, generation: Int64)?
                for try await (active, generation) in try await connection.query(
                    "SELECT active, credential_generation FROM users WHERE id = \(userID) FOR UPDATE", logger: logger
                ).decode((Bool, Int64).self) {
                    user = (active, generation)
                }
                // As SQLite does: a guarded login whose user is gone lost a race.
                guard let user else {
                    if sessionGuard.credentialGeneration != nil { throw StoreError.credentialsChanged }
                    throw StoreError.failed("no user \(userID)")
                }
                if let expected = sessionGuard.credentialGeneration, !user.active || user.generation != expected {
                    throw StoreError.credentialsChanged
                }
                var evicted: [String] = []
                if sessionGuard.maximumSessions < .max {
                    // The least recently used live sessions past the limit
                    // (with the new one), revoked where they are counted: the
                    // user's sessions stay on the server. This statement
                    // began after the row lock was granted, so it sees every
                    // session opened before.
                    for try await old in try await connection.query(
                        """
                        WITH live AS (
                            SELECT id, last_used_at, created_at FROM sessions
                            WHERE user_id = \(userID) AND revoked_at IS NULL AND expires_at > \(now)
                        ), oldest AS (
                            SELECT id, last_used_at, created_at FROM live ORDER BY last_used_at, created_at, id
                            LIMIT greatest(0, (SELECT count(*) FROM live) - \(Int64(sessionGuard.maximumSessions)) + 1)
                        ), revoked AS (
                            UPDATE sessions SET revoked_at = \(now), revoke_reason = 'session_limit'
                            FROM oldest WHERE sessions.id = oldest.id AND sessions.revoked_at IS NULL
                            RETURNING sessions.id
                        )
                        SELECT oldest.id FROM revoked JOIN oldest ON oldest.id = revoked.id
                        ORDER BY oldest.last_used_at, oldest.created_at, oldest.id
                        """, logger: logger
                    ).decode(String.self) {
                        evicted.append(old)
                    }
                    for old in evicted { notes.session(old, user: userID) }
                }
                try await connection.query(
                    """
                    INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash,
                        refresh_issued_at, refresh_expires_at)
                    VALUES (\(id), \(userID), \(now), \(now), \(expiresAt), \(ByteBuffer(bytes: refreshHash)), \(now),
                        \(expiresAt))
                    """, logger: logger)
                notes.session(id, user: userID)
                return evicted
            }
        }
    }

    public func rotateRefreshToken(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, next: [UInt8], now: Int64,
        expiresAt: Int64, grace: RefreshGrace?, _ done: @escaping StoreCompletion<RotationOutcome>
    ) {
        complete(done) { [self] in
            if let user = try await rotateIfCurrent(
                sessionID: sessionID, presented: presented, next: next, now: now, expiresAt: expiresAt, grace: grace)
            {
                return .rotated(user)
            }
            return try await write { [self] connection, notes in
                let state = try await refreshState(connection, sessionID: sessionID, presented: presented)
                switch RefreshRotation.decide(
                    token: state.token, session: state.session, now: now, presentedIssuedAt: presentedIssuedAt,
                    currentIssuedAt: state.currentIssuedAt, grace: state.grace, graceWindow: grace?.window ?? 0)
                {
                case .invalid(let why):
                    return .invalid(why)
                case .reuse:
                    return .reused(
                        userID: try await revokeForReuse(connection, sessionID, state, now: now, notes: notes))
                case .replay:
                    let user = try state.sessionUser(sessionID)
                    guard let sealedNext = state.sealedNext, let session = state.session else {
                        throw StoreError.failed("session \(sessionID) replayed without its kept successor")
                    }
                    try await connection.query(
                        "UPDATE refresh_grace SET replays = replays + 1 WHERE session_id = \(sessionID)",
                        logger: logger)
                    return .replayed(user, sealedNext: sealedNext, expiresAt: session.expiresAt)
                case .rotate:
                    let user = try state.sessionUser(sessionID)
                    try await connection.query(
                        """
                        UPDATE sessions SET refresh_hash = \(ByteBuffer(bytes: next)), refresh_issued_at = \(now),
                            refresh_expires_at = \(expiresAt), last_used_at = \(now), expires_at = \(expiresAt)
                        WHERE id = \(sessionID)
                        """, logger: logger)
                    if let grace {
                        try await connection.query(
                            """
                            INSERT INTO refresh_grace
                                (session_id, spent_hash, next_hash, spent_at, kept_until, replays, sealed_next)
                            VALUES (\(sessionID), \(ByteBuffer(bytes: presented)), \(ByteBuffer(bytes: next)), \(now),
                                \(now + grace.window), 0, \(ByteBuffer(bytes: grace.sealedNext)))
                            ON CONFLICT (session_id) DO UPDATE SET spent_hash = excluded.spent_hash,
                                next_hash = excluded.next_hash, spent_at = excluded.spent_at,
                                kept_until = excluded.kept_until, replays = 0, sealed_next = excluded.sealed_next
                            """, logger: logger)
                    }
                    notes.session(sessionID, user: user.id)
                    return .rotated(user)
                }
            }
        }
    }

    /// The common case of a refresh in one statement: the presented token
    /// is the session's current one, and nothing stops it from rotating.
    /// One conditional UPDATE, with its change row (and under a grace
    /// window the session's grace row), is the whole transaction. The row
    /// lock orders two daemons presenting one token: the second's UPDATE
    /// waits, re-checks its condition on the row the first left, matches
    /// nothing, and falls through to the locked path (where, within a
    /// grace window, it finds the first's grace row: a replay).
    ///
    /// The condition is the `.rotate` case of `RefreshRotation.decide`, all
    /// of its checks passing; any other state (nil here) is decided by
    /// `decide` itself under the row lock. The store conformance suite runs
    /// every case of the rule through both paths.
    private func rotateIfCurrent(
        sessionID: String, presented: [UInt8], next: [UInt8], now: Int64, expiresAt: Int64, grace: RefreshGrace?
    ) async throws -> UserSnapshot? {
        try await write(oneStatement: true) { [logger] connection, notes in
            var user: UserSnapshot?
            let rotation = RotateCurrentRefresh(
                sessionID: sessionID, presented: presented, next: next, now: now, expiresAt: expiresAt)
            let rows =
                if let grace {
                    try await connection.rows(
                        of: RotateCurrentRefreshKeepingGrace(
                            rotation: rotation, sealedNext: grace.sealedNext, keptUntil: now + grace.window),
                        logger: logger)
                } else {
                    try await connection.rows(of: rotation, logger: logger)
                }
            for (id, email, role, active, createdAt) in rows {
                user = UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt)
            }
            if user != nil {
                notes.insertedByStatement()
                // An error at commit (the feed trigger, a backend ended)
                // arrives after the rows; this fails if there was one.
                _ = try await connection.rows(of: CommitConfirmation(), logger: logger)
            }
            return user
        }
    }

    public func logout(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, graceWindow: Int64, now: Int64,
        _ done: @escaping StoreCompletion<LogoutOutcome>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                let state = try await refreshState(connection, sessionID: sessionID, presented: presented)
                switch RefreshRotation.decideLogout(
                    token: state.token, session: state.session, now: now, presentedIssuedAt: presentedIssuedAt,
                    currentIssuedAt: state.currentIssuedAt, grace: state.grace, graceWindow: graceWindow)
                {
                case .invalid(let why):
                    return .invalid(why)
                case .reuse:
                    return .reused(
                        userID: try await revokeForReuse(connection, sessionID, state, now: now, notes: notes))
                case .revoke:
                    let user = try state.sessionUser(sessionID)
                    try await revokeSession(
                        connection, id: sessionID, user: user.id, reason: "logout", now: now, notes: notes)
                    return .revoked(userID: user.id)
                }
            }
        }
    }

    public func sweepRefreshGrace(now: Int64, _ done: @escaping StoreCompletion<Int>) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                var count = 0
                for try await _ in try await connection.query(
                    "DELETE FROM refresh_grace WHERE kept_until <= \(now) RETURNING 1", logger: logger
                ).decode(Int.self) {
                    count += 1
                }
                return count
            }
        }
    }

    public func revokeSession(id: String, reason: String, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                var user: Int64?
                for try await found in try await connection.query(
                    """
                    UPDATE sessions SET revoked_at = \(now), revoke_reason = \(reason)
                    WHERE id = \(id) AND revoked_at IS NULL RETURNING user_id
                    """, logger: logger
                ).decode(Int64.self) {
                    user = found
                }
                guard let user else { return false }
                notes.session(id, user: user)
                return true
            }
        }
    }

    public func sessionExists(id: String, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                var exists = false
                for try await _ in try await connection.query("SELECT 1 FROM sessions WHERE id = \(id)", logger: logger)
                    .decode(Int.self)
                {
                    exists = true
                }
                return exists
            }
        }
    }

    public func revokeSessions(
        userID: Int64, keeping: String?, reason: String, now: Int64, _ done: @escaping StoreCompletion<Int>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                // Ordered after any session being opened for the user.
                try await connection.query(
                    "SELECT 1 FROM users WHERE id = \(userID) FOR NO KEY UPDATE", logger: logger)
                return try await revokeSessions(
                    connection, userID: userID, keeping: keeping, reason: reason, now: now, notes: notes)
            }
        }
    }

    public func liveSessions(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<[SessionRecord]>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                var sessions: [SessionRecord] = []
                for try await (id, user, createdAt, lastUsedAt, expiresAt) in try await connection.query(
                    """
                    SELECT id, user_id, created_at, last_used_at, expires_at FROM sessions
                    WHERE user_id = \(userID) AND revoked_at IS NULL AND expires_at > \(now)
                    ORDER BY created_at DESC, id
                    """, logger: logger
                ).decode((String, Int64, Int64, Int64, Int64).self) {
                    sessions.append(
                        SessionRecord(
                            id: id, userID: user, createdAt: createdAt, lastUsedAt: lastUsedAt, expiresAt: expiresAt,
                            revokedAt: nil))
                }
                return sessions
            }
        }
    }

    // MARK: Inside transactions

    /// Revokes a user's live sessions but `keeping`; how many.
    func revokeSessions(
        _ connection: PostgresConnection, userID: Int64, keeping: String?, reason: String, now: Int64,
        notes: ChangeNotes
    ) async throws -> Int {
        // Every unrevoked session, expired or not by this daemon's clock:
        // another host's clock may see it live. Only live ones are counted.
        var count = 0
        for try await live in try await connection.query(
            """
            UPDATE sessions SET revoked_at = \(now), revoke_reason = \(reason)
            WHERE user_id = \(userID) AND revoked_at IS NULL AND id IS DISTINCT FROM \(keeping)
            RETURNING expires_at > \(now)
            """, logger: logger
        ).decode(Bool.self) {
            if live { count += 1 }
        }
        // The kept session's grace too: after a password change, a spent
        // token of it (perhaps the reason for the change) is reuse.
        try await connection.query(
            """
            DELETE FROM refresh_grace g USING sessions s WHERE s.id = g.session_id AND s.user_id = \(userID)
            """, logger: logger)
        notes.allSessions(ofUser: userID)
        return count
    }

    private func revokeSession(
        _ connection: PostgresConnection, id: String, user: Int64, reason: String, now: Int64, notes: ChangeNotes
    ) async throws {
        try await connection.query(
            """
            UPDATE sessions SET revoked_at = \(now), revoke_reason = \(reason)
            WHERE id = \(id) AND revoked_at IS NULL
            """, logger: logger)
        notes.session(id, user: user)
    }

    private struct RefreshState {
        var token: RefreshRotation.TokenState?
        var session: RefreshRotation.SessionState?
        var user: UserSnapshot?
        var currentIssuedAt: Int64?
        /// The grace kept for the presented token, if it was the session's
        /// last spent one, and its successor's sealed box.
        var grace: RefreshRotation.GraceState?
        var sealedNext: [UInt8]?

        /// The session's user: `RefreshRotation` answers anything but
        /// `invalid` only for a session found, and its row comes with it.
        func sessionUser(_ sessionID: String) throws -> UserSnapshot {
            guard let user else { throw StoreError.failed("session \(sessionID) read without its user") }
            return user
        }
    }

    /// A spent refresh token presented again (rotation or logout): the
    /// session ends everywhere; returns its user's id.
    private func revokeForReuse(
        _ connection: PostgresConnection, _ sessionID: String, _ state: RefreshState, now: Int64, notes: ChangeNotes
    ) async throws -> Int64 {
        let user = try state.sessionUser(sessionID)
        try await revokeSession(
            connection, id: sessionID, user: user.id, reason: "refresh token reuse", now: now, notes: notes)
        return user.id
    }

    /// The session of a presented refresh token, locked: two daemons
    /// presenting the same token take turns, and only the first rotates.
    private func refreshState(_ connection: PostgresConnection, sessionID: String, presented: [UInt8]) async throws
        -> RefreshState
    {
        var state = RefreshState()
        let rows = try await connection.query(
            """
            SELECT s.revoked_at, s.expires_at, s.refresh_hash, s.refresh_expires_at, s.refresh_issued_at,
                u.id, u.email, u.role, u.active, u.created_at
            FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = \(sessionID) FOR UPDATE OF s
            """, logger: logger)
        var current: ByteBuffer?
        for try await row in rows.decode(
            (Int64?, Int64, ByteBuffer, Int64, Int64, Int64, String, String, Bool, Int64).self)
        {
            let user = UserSnapshot(id: row.5, email: row.6, role: row.7, active: row.8, createdAt: row.9)
            state.user = user
            state.session = .init(revoked: row.0 != nil, expiresAt: row.1, userActive: user.active)
            state.currentIssuedAt = row.4
            if row.2.bytes == presented { state.token = .init(spent: false, expiresAt: row.3) }
            current = row.2
        }
        guard let current, state.token == nil else { return state }
        // The grace row in a statement of its own, after the lock: every
        // writer of it holds the session's lock, so this sees their commits
        // (a join above would read it as of before the wait, and a replay
        // counted by the lock's previous holder would be missed).
        for try await row in try await connection.query(
            """
            SELECT spent_at, kept_until, replays, sealed_next, next_hash = \(current) FROM refresh_grace
            WHERE session_id = \(sessionID) AND spent_hash = \(ByteBuffer(bytes: presented))
            """, logger: logger
        ).decode((Int64, Int64, Int, ByteBuffer, Bool).self) {
            state.grace = .init(spentAt: row.0, keptUntil: row.1, replays: row.2, successorIsCurrent: row.4)
            state.sealedNext = row.3.bytes
        }
        return state
    }
}
