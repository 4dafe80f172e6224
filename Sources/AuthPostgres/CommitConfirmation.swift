import PostgresNIO

/// What confirms the commit of a one-statement write
/// (`PostgresStore.rotateIfCurrent`). Its statement commits at the
/// protocol's Sync, after its rows came back, and postgres-nio drops an
/// error that arrives there (it closes the connection instead); this
/// statement runs only after that Sync's answer, so it fails if the commit
/// did. Prepared, so the server neither parses nor plans it every time.
struct CommitConfirmation: PostgresPreparedStatement {
    static let sql = "SELECT 1"

    typealias Row = Int32

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
