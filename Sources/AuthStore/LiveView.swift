import AuthCrypto

/// The in-memory view of users and live sessions that `token.verify`
/// consults instead of SQLite. `AuthDatabase` changes it inside the same
/// serialized write that commits the change, so it never runs behind the
/// database in an order that could resurrect a revoked session.
public final class LiveView: @unchecked Sendable {
    private let lock = Mutex()
    private var users: [Int64: UserSnapshot] = [:]
    private var sessions: [String: SessionSnapshot] = [:]

    public init() {}

    public func user(id: Int64) -> UserSnapshot? { lock.withLock { users[id] } }

    public func session(id: String) -> SessionSnapshot? { lock.withLock { sessions[id] } }

    /// The user and session behind a token, read under one lock.
    public func lookup(userID: Int64, sessionID: String) -> (UserSnapshot?, SessionSnapshot?) {
        lock.withLock { (users[userID], sessions[sessionID]) }
    }

    public var counts: (users: Int, sessions: Int) { lock.withLock { (users.count, sessions.count) } }

    public enum Change: Sendable {
        case upsertUser(UserSnapshot)
        case deleteUser(Int64)
        case addSession(id: String, SessionSnapshot)
        case extendSession(id: String, expiresAt: Int64)
        case removeSession(id: String)
        /// Every session of the user except `keeping`.
        case removeSessions(userID: Int64, keeping: String?)
    }

    func apply(_ changes: [Change]) {
        guard !changes.isEmpty else { return }
        lock.withLock {
            for change in changes { applyLocked(change) }
        }
    }

    /// Replaces the contents (start-up). The caller streams rows in, so the
    /// load never holds a second copy of the data.
    func load(
        userCount: Int, sessionCount: Int,
        _ fill: (_ addUser: (UserSnapshot) -> Void, _ addSession: (String, SessionSnapshot) -> Void) throws -> Void
    ) rethrows {
        var users: [Int64: UserSnapshot] = [:]
        users.reserveCapacity(userCount)
        var sessions: [String: SessionSnapshot] = [:]
        sessions.reserveCapacity(sessionCount)
        try fill({ users[$0.id] = $0 }, { sessions[$0] = $1 })
        lock.withLock {
            self.users = users
            self.sessions = sessions
        }
    }

    private func applyLocked(_ change: Change) {
        switch change {
        case .upsertUser(let user):
            users[user.id] = user
        case .deleteUser(let id):
            users.removeValue(forKey: id)
            applyLocked(.removeSessions(userID: id, keeping: nil))
        case .addSession(let id, let session):
            sessions[id] = session
        case .extendSession(let id, let expiresAt):
            sessions[id]?.expiresAt = expiresAt
        case .removeSession(let id):
            sessions.removeValue(forKey: id)
        case .removeSessions(let userID, let keeping):
            // A scan (about a millisecond per 100,000 sessions) instead of a
            // per-user index, which would cost ~90 bytes per user all the time;
            // bulk revocations (logout_all, deactivation, password change) are rare.
            let doomed = sessions.compactMap { $0.value.userID == userID && $0.key != keeping ? $0.key : nil }
            for id in doomed { sessions.removeValue(forKey: id) }
        }
    }
}
