/// Why the PostgreSQL store could not start.
public enum PostgresStoreError: Error, CustomStringConvertible {
    case newerSchema(found: Int, supported: Int)
    case unreachable(String)

    public var description: String {
        switch self {
        case .newerSchema(let found, let supported):
            "the database schema is at version \(found), newer than this authd's \(supported): upgrade authd"
        case .unreachable(let why): "the database is unreachable: \(why)"
        }
    }
}
