import NIOCore
import PostgresNIO

/// A refresh of a session's current token in one statement
/// (`PostgresStore.rotateIfCurrent`), prepared once per connection: the
/// conditional UPDATE of the session, its change row, and the user.
/// Every condition is a primary-key probe, so after its first runs the
/// server keeps one generic plan and stops planning it on every refresh
/// (planning cost more than running it).
struct RotateCurrentRefresh: PostgresPreparedStatement {
    static let sql = """
        WITH rotated AS (
            UPDATE sessions SET refresh_hash = $1, refresh_issued_at = $3,
                refresh_expires_at = $4, last_used_at = $3, expires_at = $4
            WHERE id = $5 AND refresh_hash = $2
                AND revoked_at IS NULL AND expires_at > $3 AND refresh_expires_at > $3
                AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id AND users.active)
            RETURNING user_id
        ), noted AS (
            INSERT INTO authd_changes (user_id, session_id) SELECT user_id, $5 FROM rotated
        )
        SELECT u.id, u.email, u.role, u.active, u.created_at FROM rotated JOIN users u ON u.id = rotated.user_id
        """

    /// The user's id, email, role, active flag and creation time.
    typealias Row = (Int64, String, String, Bool, Int64)

    var sessionID: String
    /// The hashes of the presented and the next refresh token.
    var presented: [UInt8]
    var next: [UInt8]
    var now: Int64
    var expiresAt: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(ByteBuffer(bytes: next))
        bindings.append(ByteBuffer(bytes: presented))
        bindings.append(now)
        bindings.append(expiresAt)
        bindings.append(sessionID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
