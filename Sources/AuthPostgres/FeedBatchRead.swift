import PostgresNIO

/// The change feed's read, prepared once per connection: the change rows
/// past a position, each joined with the current state of what it names
/// (the session, the user, or the user's live sessions), and the feed's
/// own row (how far it was pruned, the signing keys' generation).
///
/// The feed's connection runs it with a generic plan, made once and
/// without sequential scans (`PostgresStore.feedSessionParameters`). A
/// generic plan is made without the position, so it must be good for any:
/// each lookup is a `LATERAL` subquery with `LIMIT 1`, which the planner
/// cannot turn into a join over a whole table, so it is an index probe per
/// change row however many rows the estimate guesses. The session's lookup
/// names no condition but its id: with `revoked_at IS NULL` in it, the
/// partial index of live sessions by user also matched, and on the
/// estimates of a new database a scan of that whole index looked as cheap
/// as the probe of the primary key; the outer select drops revoked ones.
/// A user's live sessions are aggregated without an order (both arrays
/// come from one pass, so they stay aligned): with `ORDER BY id`,
/// PostgreSQL 16 and later read them sorted from a scan of the whole
/// primary key instead of probing the index by user.
struct FeedBatchRead: PostgresPreparedStatement {
    /// The most rows one read returns; a full batch means there may be more.
    static let limit = 5_000

    static let sql = """
        WITH changes AS (
            SELECT position, user_id, session_id, all_sessions FROM authd_changes
            WHERE position > $1 ORDER BY position LIMIT \(limit)
        )
        SELECT f.pruned_through, f.keys_generation, c.position, c.user_id, c.session_id,
            coalesce(c.all_sessions, false), CASE WHEN s.revoked_at IS NULL THEN s.user_id END, s.expires_at,
            u.id, u.email, u.role, u.active, u.created_at, l.ids, l.expiries
        FROM (SELECT pruned_through, keys_generation FROM authd_feed LIMIT 1) f
        LEFT JOIN changes c ON true
        LEFT JOIN LATERAL (
            SELECT user_id, expires_at, revoked_at FROM sessions WHERE id = c.session_id LIMIT 1
        ) s ON true
        LEFT JOIN LATERAL (
            SELECT id, email, role, active, created_at FROM users
            WHERE c.session_id IS NULL AND NOT c.all_sessions AND id = c.user_id LIMIT 1
        ) u ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(id) AS ids, array_agg(expires_at) AS expiries FROM sessions
            WHERE c.all_sessions AND user_id = c.user_id AND revoked_at IS NULL
        ) l ON true
        ORDER BY c.position
        """

    /// The feed's row; then, when there is a change row, its position,
    /// user id, session id and all-sessions flag; the session's user (nil
    /// when revoked) and expiry; the user's fields; the live sessions' ids
    /// and expiries.
    typealias Row = (
        Int64, Int64, Int64?, Int64?, String?, Bool, Int64?, Int64?, Int64?, String?, String?, Bool?, Int64?,
        [String]?, [Int64]?
    )

    /// Reads past this position.
    var from: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(from)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
