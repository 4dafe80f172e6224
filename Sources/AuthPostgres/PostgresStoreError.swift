/// Why the PostgreSQL store could not start.
public enum PostgresStoreError: Error, CustomStringConvertible {
    case newerSchema(found: Int, oldestReader: Int, supported: Int)
    case unreachable(String)
    /// `importDeployment` into a database already in use.
    case notEmpty(users: Int, keys: Int)

    public var description: String {
        switch self {
        case .newerSchema(let found, let oldestReader, let supported):
            "the database schema is at version \(found), which needs an authd that knows version \(oldestReader) "
                + "or later; this one knows \(supported): upgrade authd"
        case .unreachable(let why): "the database is unreachable: \(why)"
        case .notEmpty(let users, let keys):
            "the database is not empty (\(users) users, \(keys) signing keys and checks): a deployment is copied only into a "
                + "database no authd has used yet (copy first, then start the hosts)"
        }
    }
}
