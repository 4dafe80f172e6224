import Logging
import PostgresNIO

/// An error from a prepared statement, so that its connection is closed
/// rather than reused (`PostgresConnectionPool.leavesConnectionUsable`):
/// postgres-nio remembers a preparation that failed and returns the same
/// error to every later execute on that connection, and a server whose
/// schema changed the statement's result refuses the cached plan ("cached
/// plan must not change result type") until it is prepared again. A new
/// connection prepares it afresh.
struct PreparedStatementFailure: Error {
    let underlying: any Error
}

extension PostgresConnection {
    /// Every row of `statement`, prepared on this connection the first time.
    func rows<Statement: PostgresPreparedStatement>(of statement: Statement, logger: Logger) async throws
        -> [Statement.Row]
    {
        do {
            var rows: [Statement.Row] = []
            for try await row in try await execute(statement, logger: logger) { rows.append(row) }
            return rows
        } catch {
            throw PreparedStatementFailure(underlying: error)
        }
    }
}
