import AuthCrypto

/// The in-memory view of users and live sessions that `token.verify`
/// consults instead of SQLite. `AuthDatabase` changes it inside the same
/// serialized write that commits the change, so it never runs behind the
/// database in an order that could resurrect a revoked session.
public final class LiveView: @unchecked Sendable {
    private let lock = Mutex()
    private var users: [Int64: UserSnapshot] = [:]
    private var sessions: [String: SessionSnapshot] = [:]
    private var sessionsByUser: [Int64: Set<String>] = [:]

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

    func load(users loaded: [UserSnapshot], sessions loadedSessions: [(String, SessionSnapshot)]) {
        lock.withLock {
            users = Dictionary(uniqueKeysWithValues: loaded.map { ($0.id, $0) })
            sessions = [:]
            sessionsByUser = [:]
            for (id, session) in loadedSessions { applyLocked(.addSession(id: id, session)) }
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
            sessionsByUser[session.userID, default: []].insert(id)
        case .extendSession(let id, let expiresAt):
            sessions[id]?.expiresAt = expiresAt
        case .removeSession(let id):
            if let session = sessions.removeValue(forKey: id) {
                sessionsByUser[session.userID]?.remove(id)
                if sessionsByUser[session.userID]?.isEmpty == true {
                    sessionsByUser.removeValue(forKey: session.userID)
                }
            }
        case .removeSessions(let userID, let keeping):
            guard let ids = sessionsByUser[userID] else { return }
            for id in ids where id != keeping { sessions.removeValue(forKey: id) }
            if let keeping, ids.contains(keeping) {
                sessionsByUser[userID] = [keeping]
            } else {
                sessionsByUser.removeValue(forKey: userID)
            }
        }
    }
}
