import AuthCore

/// The in-memory view of users and live sessions that `token.verify`
/// consults instead of SQLite. `AuthDatabase` changes it inside the same
/// serialized write that commits the change, so it never runs behind the
/// database in an order that could resurrect a revoked session.
///
/// It holds every user and live session of the store (a million of each is
/// about 100 MiB: see `UserTable` and `SessionTable` for the layout).
public final class LiveView: Sendable {
    fileprivate struct Contents {
        var users = UserTable()
        var sessions = SessionTable()
    }

    private let contents = Locked(Contents())

    public init() {}

    public func user(id: Int64) -> UserSnapshot? { contents.withLock { $0.users.user(id: id) } }

    public func session(id: String) -> SessionSnapshot? { contents.withLock { $0.sessions.session(id: id) } }

    /// The user and session behind a token, read under one lock.
    public func lookup(userID: Int64, sessionID: String) -> (UserSnapshot?, SessionSnapshot?) {
        contents.withLock { ($0.users.user(id: userID), $0.sessions.session(id: sessionID)) }
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

    /// Fills a new view's contents (`LiveView.load`), from snapshots or
    /// straight from a database row's bytes.
    public struct Loader {
        fileprivate var contents: Contents

        public mutating func addUser(_ user: UserSnapshot) {
            UserTable.withText(of: user) {
                addUser(id: user.id, email: $0, role: $1, active: user.active, createdAt: user.createdAt)
            }
        }

        /// A user from its email's and role's UTF-8 bytes, with no `String`
        /// made for either. Ids are unique within a load.
        public mutating func addUser(
            id: Int64, email: UnsafeBufferPointer<UInt8>, role: UnsafeBufferPointer<UInt8>, active: Bool,
            createdAt: Int64
        ) {
            contents.users.load(id: id, email: email, role: role, active: active, createdAt: createdAt)
        }

        public mutating func addSession(id: String, _ session: SessionSnapshot) {
            var id = id
            id.withUTF8 { addSession(id: $0, session) }
        }

        /// A session from its id's UTF-8 bytes.
        public mutating func addSession(id: UnsafeBufferPointer<UInt8>, _ session: SessionSnapshot) {
            contents.sessions.load(id: id, session)
        }
    }

    /// Replaces the contents (start-up, or a reload). The caller streams
    /// rows into the loader, so the load never holds a second copy of the
    /// data; the counts size the tables (more rows than counted still fit).
    public func load(userCount: Int, sessionCount: Int, _ fill: (inout Loader) throws -> Void) rethrows {
        var loader = Loader(
            contents: Contents(users: UserTable(expected: userCount), sessions: SessionTable(expected: sessionCount)))
        try fill(&loader)
        loader.contents.users.finishLoading()
        loader.contents.sessions.finishLoading()
        let loaded = loader.contents
        contents.withLock { $0 = loaded }
    }

    private static func apply(_ change: Change, to contents: inout Contents) {
        switch change {
        case .upsertUser(let user):
            contents.users.upsert(user)
        case .deleteUser(let id):
            contents.users.remove(id: id)
            contents.sessions.removeAll(userID: id, keeping: nil)
        case .addSession(let id, let session):
            contents.sessions.insert(id: id, session)
        case .extendSession(let id, let expiresAt):
            contents.sessions.setExpiry(id: id, expiresAt)
        case .removeSession(let id):
            contents.sessions.remove(id: id)
        case .removeSessions(let userID, let keeping):
            contents.sessions.removeAll(userID: userID, keeping: keeping)
        }
    }
}
