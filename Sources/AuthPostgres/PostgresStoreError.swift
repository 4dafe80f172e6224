/// Why the PostgreSQL store could not start.
public enum PostgresStoreError: Error, CustomStringConvertible {
    case newerSchema(found: Int, oldestReader: Int, supported: Int)
    case unreachable(String)

    public var description: String {
        switch self {
        case .newerSchema(let found, let oldestReader, let supported):
            "the database schema is at version \(found), which needs an authd that knows version \(oldestReader) "
                + "or later; this one knows \(supported): upgrade authd"
        case .unreachable(let why): "the database is unreachable: \(why)"
        }
    }
}
