import AuthCore

/// The in-memory view of users and live sessions that `token.verify`
/// consults instead of SQLite. `AuthDatabase` changes it inside the same
/// serialized write that commits the change, so it never runs behind the
/// database in an order that could resurrect a revoked session.
public final class LiveView: Sendable {
    private struct Contents {
        var users: [Int64: UserSnapshot] = [:]
        var sessions: [String: SessionSnapshot] = [:]
    }

    private let contents = Locked(Contents())

    public init() {}

    public func user(id: Int64) -> UserSnapshot? { contents.withLock { $0.users[id] } }

    public func session(id: String) -> SessionSnapshot? { contents.withLock { $0.sessions[id] } }

    /// The user and session behind a token, read under one lock.
    public func lookup(userID: Int64, sessionID: String) -> (UserSnapshot?, SessionSnapshot?) {
        contents.withLock { ($0.users[userID], $0.sessions[sessionID]) }
    }

    public var counts: (users: Int, sessions: Int) { contents.withLock { ($0.users.count, $0.sessions.count) } }

    public enum Change: Sendable {
        case upsertUser(UserSnapshot)
        case deleteUser(Int64)
        case addSession(id: String, SessionSnapshot)
        case extendSession(id: String, expiresAt: Int64)
        case removeSession(id: String)
        /// Every session of the user except `keeping`.
        case removeSessions(userID: Int64, keeping: String?)
    }

    public func apply(_ changes: [Change]) {
        guard !changes.isEmpty else { return }
        contents.withLock { contents in
            for change in changes { LiveView.apply(change, to: &contents) }
        }
    }

    /// Replaces the contents (start-up). The caller streams rows in, so the
    /// load never holds a second copy of the data.
    public func load(
        userCount: Int, sessionCount: Int,
        _ fill: (_ addUser: (UserSnapshot) -> Void, _ addSession: (String, SessionSnapshot) -> Void) throws -> Void
    ) rethrows {
        var users: [Int64: UserSnapshot] = [:]
        users.reserveCapacity(userCount)
        var sessions: [String: SessionSnapshot] = [:]
        sessions.reserveCapacity(sessionCount)
        try fill({ users[$0.id] = $0 }, { sessions[$0] = $1 })
        let loaded = Contents(users: users, sessions: sessions)
        contents.withLock { $0 = loaded }
    }

    private static func apply(_ change: Change, to contents: inout Contents) {
        switch change {
        case .upsertUser(let user):
            contents.users[user.id] = user
        case .deleteUser(let id):
            contents.users.removeValue(forKey: id)
            apply(.removeSessions(userID: id, keeping: nil), to: &contents)
        case .addSession(let id, let session):
            contents.sessions[id] = session
        case .extendSession(let id, let expiresAt):
            contents.sessions[id]?.expiresAt = expiresAt
        case .removeSession(let id):
            contents.sessions.removeValue(forKey: id)
        case .removeSessions(let userID, let keeping):
            // A scan (about a millisecond per 100,000 sessions) instead of a
            // per-user index, which would cost ~90 bytes per user all the time;
            // bulk revocations (logout_all, deactivation, password change) are rare.
            let doomed = contents.sessions.compactMap {
                $0.value.userID == userID && $0.key != keeping ? $0.key : nil
            }
            for id in doomed { contents.sessions.removeValue(forKey: id) }
        }
    }
}
