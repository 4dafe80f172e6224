import NIOCore
import PostgresNIO

/// `RotateCurrentRefresh` under a grace window (`refresh_grace` > 0): the
/// same conditional UPDATE and change row, and in the same statement the
/// session's grace row (the spent token's hash, the time, the successor's
/// hash and sealed box) written over its previous one. A statement of its
/// own, so a refresh without grace stays exactly as it was.
struct RotateCurrentRefreshKeepingGrace: PostgresPreparedStatement {
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
        ), kept AS (
            INSERT INTO refresh_grace (session_id, spent_hash, next_hash, spent_at, kept_until, replays, sealed_next)
            SELECT $5, $2, $1, $3, $7, 0, $6 FROM rotated
            ON CONFLICT (session_id) DO UPDATE SET spent_hash = excluded.spent_hash,
                next_hash = excluded.next_hash, spent_at = excluded.spent_at, kept_until = excluded.kept_until,
                replays = 0, sealed_next = excluded.sealed_next
        )
        SELECT u.id, u.email, u.role, u.active, u.created_at FROM rotated JOIN users u ON u.id = rotated.user_id
        """

    /// The user's id, email, role, active flag and creation time.
    typealias Row = RotateCurrentRefresh.Row

    var rotation: RotateCurrentRefresh
    var sealedNext: [UInt8]
    var keptUntil: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = try rotation.makeBindings()
        bindings.append(ByteBuffer(bytes: sealedNext))
        bindings.append(keptUntil)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
