import AuthCore
import AuthServiceCore
import Logging
import PostgresNIO

/// The TOTP second factor, its recovery codes and the challenges of
/// `auth.mfa`. Every compare-and-swap is one conditional statement: under
/// READ COMMITTED, the second of two daemons racing for the same row waits
/// for the first, re-checks its condition on the row the first left, and
/// changes nothing (one code, one recovery code, one challenge: one wins).
/// Nothing here changes what token checks see, so no change rows.
extension PostgresStore {
    public func secondFactor(userID: Int64, _ done: @escaping StoreCompletion<SecondFactorRecord?>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                var record: SecondFactorRecord?
                for try await (secret, confirmed, step) in try await connection.query(
                    "SELECT totp_secret, totp_confirmed, totp_last_step FROM users WHERE id = \(userID)",
                    logger: logger
                ).decode((ByteBuffer?, Bool, Int64?).self) {
                    record = secret.map {
                        SecondFactorRecord(sealedSecret: $0.bytes, confirmed: confirmed, lastStep: step)
                    }
                }
                return record
            }
        }
    }

    public func beginSecondFactor(
        userID: Int64, sealedSecret: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                var confirmed: Bool?
                for try await found in try await connection.query(
                    "SELECT totp_confirmed FROM users WHERE id = \(userID) FOR NO KEY UPDATE", logger: logger
                ).decode(Bool.self) {
                    confirmed = found
                }
                guard let confirmed else { throw StoreError.notFound }
                if confirmed { return false }
                try await connection.query(
                    """
                    UPDATE users SET totp_secret = \(ByteBuffer(bytes: sealedSecret)), totp_last_step = NULL,
                        updated_at = \(now)
                    WHERE id = \(userID)
                    """, logger: logger)
                return true
            }
        }
    }

    public func confirmSecondFactor(
        userID: Int64, sealedSecret: [UInt8], step: Int64, recoveryCodeHashes: [[UInt8]], now: Int64,
        _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                guard
                    try await Self.changed(
                        connection.query(
                            """
                            UPDATE users SET totp_confirmed = true, totp_last_step = \(step), updated_at = \(now),
                                credential_generation = credential_generation + 1
                            WHERE id = \(userID) AND totp_secret = \(ByteBuffer(bytes: sealedSecret))
                                AND NOT totp_confirmed
                            RETURNING 1
                            """, logger: logger))
                else { return false }
                try await Self.storeRecoveryCodes(
                    connection, userID: userID, hashes: recoveryCodeHashes, logger: logger)
                return true
            }
        }
    }

    public func acceptSecondFactorStep(
        userID: Int64, sealedSecret: [UInt8], step: Int64, _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                try await Self.changed(
                    connection.query(
                        """
                        UPDATE users SET totp_last_step = \(step)
                        WHERE id = \(userID) AND totp_confirmed AND totp_secret = \(ByteBuffer(bytes: sealedSecret))
                            AND (totp_last_step IS NULL OR totp_last_step < \(step))
                        RETURNING 1
                        """, logger: logger))
            }
        }
    }

    public func spendRecoveryCode(userID: Int64, hash: [UInt8], _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                try await Self.changed(
                    connection.query(
                        """
                        DELETE FROM recovery_codes WHERE user_id = \(userID) AND code_hash = \(ByteBuffer(bytes: hash))
                        RETURNING 1
                        """, logger: logger))
            }
        }
    }

    public func replaceRecoveryCodes(userID: Int64, hashes: [[UInt8]], _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                guard
                    try await Self.changed(
                        connection.query(
                            "SELECT 1 FROM users WHERE id = \(userID) AND totp_confirmed FOR NO KEY UPDATE",
                            logger: logger))
                else { return false }
                try await Self.storeRecoveryCodes(connection, userID: userID, hashes: hashes, logger: logger)
                return true
            }
        }
    }

    public func removeSecondFactor(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                let removed = try await Self.changed(
                    connection.query(
                        """
                        UPDATE users SET totp_secret = NULL, totp_confirmed = false, totp_last_step = NULL,
                            updated_at = \(now)
                        WHERE id = \(userID) AND totp_secret IS NOT NULL
                        RETURNING 1
                        """, logger: logger))
                try await connection.query("DELETE FROM recovery_codes WHERE user_id = \(userID)", logger: logger)
                try await connection.query("DELETE FROM mfa_challenges WHERE user_id = \(userID)", logger: logger)
                return removed
            }
        }
    }

    public func createMFAChallenge(
        tokenHash: [UInt8], _ challenge: MFAChallenge, _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { [self] in
            try await write { [logger] connection, _ -> Void in
                try await connection.query(
                    """
                    INSERT INTO mfa_challenges (token_hash, user_id, credential_generation, expires_at)
                    VALUES (\(ByteBuffer(bytes: tokenHash)), \(challenge.userID), \(challenge.credentialGeneration),
                        \(challenge.expiresAt))
                    """, logger: logger)
            }
        }
    }

    public func mfaChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<MFAChallenge?>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                var challenge: MFAChallenge?
                for try await (user, generation, expiresAt) in try await connection.query(
                    """
                    SELECT user_id, credential_generation, expires_at FROM mfa_challenges
                    WHERE token_hash = \(ByteBuffer(bytes: tokenHash)) AND expires_at > \(now)
                    """, logger: logger
                ).decode((Int64, Int64, Int64).self) {
                    challenge = MFAChallenge(userID: user, credentialGeneration: generation, expiresAt: expiresAt)
                }
                return challenge
            }
        }
    }

    public func spendMFAChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await write { [logger] connection, _ in
                try await Self.changed(
                    connection.query(
                        """
                        DELETE FROM mfa_challenges
                        WHERE token_hash = \(ByteBuffer(bytes: tokenHash)) AND expires_at > \(now)
                        RETURNING 1
                        """, logger: logger))
            }
        }
    }

    /// Whether a statement with `RETURNING 1` (or a `SELECT 1`) gave a row.
    private static func changed(_ rows: PostgresRowSequence) async throws -> Bool {
        var found = false
        for try await _ in rows.decode(Int.self) { found = true }
        return found
    }

    private static func storeRecoveryCodes(
        _ connection: PostgresConnection, userID: Int64, hashes: [[UInt8]], logger: Logger
    ) async throws {
        try await connection.query("DELETE FROM recovery_codes WHERE user_id = \(userID)", logger: logger)
        for hash in hashes {
            try await connection.query(
                """
                INSERT INTO recovery_codes (user_id, code_hash) VALUES (\(userID), \(ByteBuffer(bytes: hash)))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }
}
