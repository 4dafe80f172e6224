import AuthCore
import AuthServiceCore
import Foundation
import GRDB

/// The TOTP second factor, its recovery codes and the challenges of
/// `auth.mfa`; every compare-and-swap is one conditional statement in a
/// write transaction (SQLite serialises them).
extension AuthDatabase {
    public func secondFactor(userID: Int64) throws -> SecondFactorRecord? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT totp_secret, totp_confirmed, totp_last_step FROM users WHERE id = ?",
                arguments: [userID])
        }.flatMap { row in
            guard let secret = row["totp_secret"] as Data? else { return nil }
            return SecondFactorRecord(
                sealedSecret: Array(secret), confirmed: row["totp_confirmed"], lastStep: row["totp_last_step"])
        }
    }

    public func beginSecondFactor(userID: Int64, sealedSecret: [UInt8], now: Int64) throws -> Bool {
        try write { db, _ in
            guard
                let confirmed = try Bool.fetchOne(
                    db, sql: "SELECT totp_confirmed FROM users WHERE id = ?", arguments: [userID])
            else { throw StoreError.notFound }
            if confirmed { return false }
            try db.execute(
                sql: "UPDATE users SET totp_secret = ?, totp_last_step = NULL, updated_at = ? WHERE id = ?",
                arguments: [Data(sealedSecret), now, userID])
            return true
        }
    }

    public func confirmSecondFactor(
        userID: Int64, sealedSecret: [UInt8], step: Int64, recoveryCodeHashes: [[UInt8]], now: Int64
    ) throws -> Bool {
        try write { db, _ in
            try db.execute(
                sql: """
                    UPDATE users SET totp_confirmed = 1, totp_last_step = ?, updated_at = ?,
                        credential_generation = credential_generation + 1
                    WHERE id = ? AND totp_secret = ? AND totp_confirmed = 0
                    """, arguments: [step, now, userID, Data(sealedSecret)])
            guard db.changesCount == 1 else { return false }
            try storeRecoveryCodes(db, userID: userID, hashes: recoveryCodeHashes)
            return true
        }
    }

    public func acceptSecondFactorStep(userID: Int64, sealedSecret: [UInt8], step: Int64) throws -> Bool {
        try write { db, _ in
            try db.execute(
                sql: """
                    UPDATE users SET totp_last_step = ?
                    WHERE id = ? AND totp_confirmed = 1 AND totp_secret = ?
                        AND (totp_last_step IS NULL OR totp_last_step < ?)
                    """, arguments: [step, userID, Data(sealedSecret), step])
            return db.changesCount == 1
        }
    }

    public func spendRecoveryCode(userID: Int64, hash: [UInt8]) throws -> Bool {
        try write { db, _ in
            try db.execute(
                sql: "DELETE FROM recovery_codes WHERE user_id = ? AND code_hash = ?", arguments: [userID, Data(hash)])
            return db.changesCount == 1
        }
    }

    public func replaceRecoveryCodes(userID: Int64, hashes: [[UInt8]]) throws -> Bool {
        try write { db, _ in
            guard
                try Bool.fetchOne(db, sql: "SELECT totp_confirmed FROM users WHERE id = ?", arguments: [userID])
                    == true
            else { return false }
            try storeRecoveryCodes(db, userID: userID, hashes: hashes)
            return true
        }
    }

    public func removeSecondFactor(userID: Int64, now: Int64) throws -> Bool {
        try write { db, _ in
            try db.execute(
                sql: """
                    UPDATE users SET totp_secret = NULL, totp_confirmed = 0, totp_last_step = NULL, updated_at = ?
                    WHERE id = ? AND totp_secret IS NOT NULL
                    """, arguments: [now, userID])
            let removed = db.changesCount == 1
            try db.execute(sql: "DELETE FROM recovery_codes WHERE user_id = ?", arguments: [userID])
            try db.execute(sql: "DELETE FROM mfa_challenges WHERE user_id = ?", arguments: [userID])
            return removed
        }
    }

    public func createMFAChallenge(tokenHash: [UInt8], _ challenge: MFAChallenge) throws {
        try write { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO mfa_challenges (token_hash, user_id, credential_generation, expires_at)
                    VALUES (?, ?, ?, ?)
                    """,
                arguments: [
                    Data(tokenHash), challenge.userID, challenge.credentialGeneration, challenge.expiresAt,
                ])
        }
    }

    public func mfaChallenge(tokenHash: [UInt8], now: Int64) throws -> MFAChallenge? {
        try read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT user_id, credential_generation, expires_at FROM mfa_challenges
                    WHERE token_hash = ? AND expires_at > ?
                    """, arguments: [Data(tokenHash), now])
        }.map { row in
            MFAChallenge(
                userID: row["user_id"], credentialGeneration: row["credential_generation"],
                expiresAt: row["expires_at"])
        }
    }

    public func spendMFAChallenge(tokenHash: [UInt8], now: Int64) throws -> Bool {
        try write { db, _ in
            try db.execute(
                sql: "DELETE FROM mfa_challenges WHERE token_hash = ? AND expires_at > ?",
                arguments: [Data(tokenHash), now])
            return db.changesCount == 1
        }
    }

    /// Records the check value of the key-encryption key in use, or
    /// compares it with the recorded one. Another key is taken on only
    /// while nothing is sealed under the recorded one (no TOTP secret, no
    /// kept refresh successor); else false: the secrets would no longer
    /// open, and every user with a second factor would be locked out.
    public func adoptKeyEncryptionKey(checkValue: String) throws -> Bool {
        try write { db, _ in
            let recorded = try String.fetchOne(
                db, sql: "SELECT value FROM authd_checks WHERE name = 'key-encryption-key'")
            if recorded == checkValue { return true }
            if recorded != nil {
                let sealed =
                    try Bool.fetchOne(
                        db,
                        sql: """
                            SELECT EXISTS (SELECT 1 FROM users WHERE totp_secret IS NOT NULL)
                                OR EXISTS (SELECT 1 FROM refresh_grace)
                            """) ?? false
                if sealed { return false }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO authd_checks (name, value) VALUES ('key-encryption-key', ?)",
                arguments: [checkValue])
            return true
        }
    }

    private func storeRecoveryCodes(_ db: Database, userID: Int64, hashes: [[UInt8]]) throws {
        try db.execute(sql: "DELETE FROM recovery_codes WHERE user_id = ?", arguments: [userID])
        for hash in hashes {
            try db.execute(
                sql: "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (?, ?)",
                arguments: [userID, Data(hash)])
        }
    }
}
