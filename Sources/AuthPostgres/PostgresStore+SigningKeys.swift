import AuthServiceCore
import Logging
import NIOCore
import PostgresNIO

/// The signing keys every daemon on the database shares (schema version 2).
extension PostgresStore: SharedSigningKeys {
    public func registerBaseKeys(_ candidates: [StoredSigningKey]) throws -> SharedKeySnapshot {
        try blocking { [self] in
            try await Self.within(timeout) { [self] in
                try await pool.withTransaction(logger: logger) { connection in
                    for key in candidates {
                        // The partial unique index on the base keys makes a
                        // second host's candidate a no-op: the first one wins.
                        try await connection.query(
                            """
                            INSERT INTO authd_signing_keys
                                (purpose, algorithm, kid, is_base, sealed, created_at, retired_at)
                            VALUES (\(key.purpose.rawValue), \(key.algorithm), \(key.kid), true,
                                \(key.sealed.map { ByteBuffer(bytes: $0) }), \(key.createdAt), NULL)
                            ON CONFLICT DO NOTHING
                            """, logger: logger)
                    }
                    // The generation first: keys read after it are as new or
                    // newer, never older.
                    var generation: Int64 = 0
                    for try await found in try await connection.query(
                        "SELECT keys_generation FROM authd_feed", logger: logger
                    ).decode(Int64.self) {
                        generation = found
                    }
                    return SharedKeySnapshot(
                        generation: generation, keys: try await Self.signingKeys(connection, logger: logger))
                }
            }
        }
    }

    public func rotate(to key: StoredSigningKey, now: Int64, retiredBefore: Int64) throws -> SharedKeySnapshot {
        defer { wakeup.notifyOthers() }
        return try blocking { [self] in
            try await Self.within(timeout) { [self] in
                try await pool.withTransaction(logger: logger) { connection in
                    // The feed row's lock serialises rotations on every host,
                    // and the new generation tells every feed to reload.
                    var generation: Int64 = 0
                    for try await found in try await connection.query(
                        "UPDATE authd_feed SET keys_generation = keys_generation + 1 RETURNING keys_generation",
                        logger: logger
                    ).decode(Int64.self) {
                        generation = found
                    }
                    try await connection.query(
                        """
                        UPDATE authd_signing_keys SET retired_at = \(now)
                        WHERE purpose = 'access' AND algorithm = \(key.algorithm) AND retired_at IS NULL
                        """, logger: logger)
                    try await connection.query(
                        """
                        INSERT INTO authd_signing_keys
                            (purpose, algorithm, kid, is_base, sealed, created_at, retired_at)
                        VALUES ('access', \(key.algorithm), \(key.kid), false,
                            \(key.sealed.map { ByteBuffer(bytes: $0) }), \(key.createdAt), NULL)
                        """, logger: logger)
                    try await connection.query(
                        """
                        DELETE FROM authd_signing_keys
                        WHERE NOT is_base AND retired_at IS NOT NULL AND retired_at < \(retiredBefore)
                        """, logger: logger)
                    return SharedKeySnapshot(
                        generation: generation, keys: try await Self.signingKeys(connection, logger: logger))
                }
            }
        }
    }

    public func confirmCheckValue(name: String, value: String) throws -> Bool {
        try blocking { [self] in
            try await Self.within(timeout) { [self] in
                try await pool.withTransaction(logger: logger) { connection in
                    try await connection.query(
                        "INSERT INTO authd_checks (name, value) VALUES (\(name), \(value)) ON CONFLICT DO NOTHING",
                        logger: logger)
                    var stored: String?
                    for try await found in try await connection.query(
                        "SELECT value FROM authd_checks WHERE name = \(name)", logger: logger
                    ).decode(String.self) {
                        stored = found
                    }
                    return stored == value
                }
            }
        }
    }

    public func onSigningKeysChanged(_ handler: @escaping @Sendable (SharedKeySnapshot) -> Bool) {
        feed.onSigningKeysChanged(handler)
    }

    /// Every stored key, oldest first.
    static func signingKeys(_ connection: PostgresConnection, logger: Logger) async throws -> [StoredSigningKey] {
        var keys: [StoredSigningKey] = []
        let rows = try await connection.query(
            """
            SELECT purpose, algorithm, kid, is_base, sealed, created_at, retired_at FROM authd_signing_keys
            ORDER BY created_at, kid
            """, logger: logger)
        for try await (purpose, algorithm, kid, isBase, sealed, createdAt, retiredAt) in rows.decode(
            (String, String, String, Bool, ByteBuffer?, Int64, Int64?).self)
        {
            // A purpose this authd does not know (a newer one's) is not its to use.
            guard let purpose = StoredSigningKey.Purpose(rawValue: purpose) else { continue }
            keys.append(
                StoredSigningKey(
                    kid: kid, purpose: purpose, algorithm: algorithm, isBase: isBase, sealed: sealed?.bytes,
                    createdAt: createdAt, retiredAt: retiredAt))
        }
        return keys
    }
}
