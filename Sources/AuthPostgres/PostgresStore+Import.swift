import AuthServiceCore
import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// Copies a single-host deployment in, in one transaction, into a
    /// database that has no users and no signing keys yet (else
    /// `PostgresStoreError.notEmpty`, and nothing is written). User ids are
    /// kept (tokens name them). `checks` are the check values the hosts must
    /// agree on (`confirmCheckValue`), recorded with the keys. Daemons
    /// already following this database reload their whole view, as after a
    /// pruned feed.
    public func importDeployment(_ copy: DeploymentCopy, keys: [StoredSigningKey], checks: [String: String]) throws {
        try blocking { [self] in
            // A large deployment takes longer than one call may.
            try await Self.within(max(timeout, .seconds(600))) { [self] in
                try await pool.withTransaction(logger: logger) { connection in
                    try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
                    try await connection.query(
                        "LOCK TABLE users, authd_signing_keys, authd_checks IN EXCLUSIVE MODE", logger: logger)
                    var present = (users: 0 as Int64, keys: 0 as Int64)
                    for try await counts in try await connection.query(
                        """
                        SELECT (SELECT count(*) FROM users),
                            (SELECT count(*) FROM authd_signing_keys) + (SELECT count(*) FROM authd_checks)
                        """, logger: logger
                    ).decode((Int64, Int64).self) {
                        present = counts
                    }
                    guard present == (0, 0) else {
                        throw PostgresStoreError.notEmpty(users: Int(present.users), keys: Int(present.keys))
                    }
                    for (name, value) in checks.sorted(by: { $0.key < $1.key }) {
                        try await connection.query(
                            "INSERT INTO authd_checks (name, value) VALUES (\(name), \(value))", logger: logger)
                    }
                    try await insert(copy, keys: keys, connection)
                }
            }
        }
    }

    private func insert(_ copy: DeploymentCopy, keys: [StoredSigningKey], _ connection: PostgresConnection)
        async throws
    {
        let chunk = 5_000
        for start in stride(from: 0, to: copy.users.count, by: chunk) {
            let users = copy.users[start..<min(start + chunk, copy.users.count)]
            try await connection.query(
                """
                INSERT INTO users
                    (id, email, password_hash, role, active, created_at, updated_at, credential_generation)
                SELECT * FROM unnest(\(users.map(\.id)), \(users.map(\.email))::text[], \(users.map(\.passwordHash))::text[],
                    \(users.map(\.role))::text[], \(users.map(\.active)), \(users.map(\.createdAt)),
                    \(users.map(\.updatedAt)), \(users.map(\.credentialGeneration)))
                """, logger: logger)
        }
        for factor in copy.secondFactors {
            try await connection.query(
                """
                UPDATE users SET totp_secret = \(ByteBuffer(bytes: factor.record.sealedSecret)),
                    totp_confirmed = \(factor.record.confirmed), totp_last_step = \(factor.record.lastStep)
                WHERE id = \(factor.userID)
                """, logger: logger)
            for hash in factor.recoveryCodeHashes {
                try await connection.query(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (\(factor.userID), \(ByteBuffer(bytes: hash)))",
                    logger: logger)
            }
        }
        // New users are numbered after the copied ones, and after deleted ones.
        try await connection.query(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), \(copy.nextUserID), false)", logger: logger)
        for start in stride(from: 0, to: copy.sessions.count, by: chunk) {
            let sessions = copy.sessions[start..<min(start + chunk, copy.sessions.count)]
            try await connection.query(
                """
                INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, revoke_reason,
                    refresh_hash, refresh_issued_at, refresh_expires_at)
                SELECT i, u, c, l, e, NULL, NULL, h, ri, re FROM unnest(\(sessions.map(\.id))::text[],
                    \(sessions.map(\.userID)), \(sessions.map(\.createdAt)), \(sessions.map(\.lastUsedAt)),
                    \(sessions.map(\.expiresAt)), \(sessions.map { ByteBuffer(bytes: $0.refreshHash) }),
                    \(sessions.map(\.refreshIssuedAt)), \(sessions.map(\.refreshExpiresAt)))
                    AS t(i, u, c, l, e, h, ri, re)
                """, logger: logger)
        }
        let counters = copy.failureCounters
        if !counters.isEmpty {
            try await connection.query(
                """
                INSERT INTO login_failures (key, failures, window_start)
                SELECT * FROM unnest(\(counters.map(\.key))::text[], \(counters.map(\.failures)), \(counters.map(\.windowStart)))
                """, logger: logger)
        }
        for key in keys {
            try await connection.query(
                """
                INSERT INTO authd_signing_keys (purpose, algorithm, kid, is_base, sealed, created_at, retired_at)
                VALUES (\(key.purpose.rawValue), \(key.algorithm), \(key.kid), \(key.isBase),
                    \(key.sealed.map { ByteBuffer(bytes: $0) }), \(key.createdAt), \(key.retiredAt))
                """, logger: logger)
        }
        // Every daemon on the database reloads its view and its keys.
        try await connection.query(
            """
            UPDATE authd_feed SET pruned_through = nextval('authd_feed_positions'),
                keys_generation = keys_generation + 1
            """, logger: logger)
    }
}
