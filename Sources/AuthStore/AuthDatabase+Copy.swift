import AuthServiceCore
import Foundation
import GRDB

extension AuthDatabase {
    /// The deployment as of one snapshot, for moving it onto a shared store:
    /// every user, every session live at `now` with its current refresh
    /// token, and the failure counters.
    public func copyForMigration(now: Int64) throws -> DeploymentCopy {
        try read { db in
            var copy = DeploymentCopy()
            let users = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, email, password_hash, role, active, created_at, updated_at, credential_generation
                    FROM users ORDER BY id
                    """)
            while let row = try users.next() {
                copy.users.append(
                    UserRecord(
                        id: row[0], email: row[1], passwordHash: row[2], role: row[3], active: row[4],
                        createdAt: row[5], updatedAt: row[6], credentialGeneration: row[7]))
            }
            let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'users'") ?? 0
            copy.nextUserID = max(sequence, copy.users.last?.id ?? 0) + 1
            let sessions = try Row.fetchCursor(
                db,
                sql: """
                    SELECT s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at,
                        r.token_hash, r.issued_at, r.expires_at
                    FROM sessions s JOIN refresh_tokens r ON r.session_id = s.id AND r.spent_at IS NULL
                    WHERE s.revoked_at IS NULL AND s.expires_at > ?
                    ORDER BY s.id
                    """, arguments: [now])
            while let row = try sessions.next() {
                let hash: [UInt8] = Array(row[5] as Data)
                copy.sessions.append(
                    .init(
                        id: row[0], userID: row[1], createdAt: row[2], lastUsedAt: row[3], expiresAt: row[4],
                        refreshHash: hash, refreshIssuedAt: row[6], refreshExpiresAt: row[7]))
            }
            var codes: [Int64: [[UInt8]]] = [:]
            let codeRows = try Row.fetchCursor(db, sql: "SELECT user_id, code_hash FROM recovery_codes")
            while let row = try codeRows.next() { codes[row[0], default: []].append(Array(row[1] as Data)) }
            let factors = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, totp_secret, totp_confirmed, totp_last_step FROM users
                    WHERE totp_secret IS NOT NULL ORDER BY id
                    """)
            while let row = try factors.next() {
                let userID: Int64 = row[0]
                copy.secondFactors.append(
                    .init(
                        userID: userID,
                        record: SecondFactorRecord(
                            sealedSecret: Array(row[1] as Data), confirmed: row[2], lastStep: row[3]),
                        recoveryCodeHashes: codes[userID] ?? []))
            }
            let counters = try Row.fetchCursor(db, sql: "SELECT key, failures, window_start FROM login_failures")
            while let row = try counters.next() {
                copy.failureCounters.append(.init(key: row[0], failures: row[1], windowStart: row[2]))
            }
            return copy
        }
    }
}
