import AuthCore
import AuthServiceCore
import GRDB

extension AuthDatabase {
    public func createUser(email: String, passwordHash: String, role: String, active: Bool, now: Int64) throws
        -> UserRecord
    {
        try write { db, changes in
            try insertUser(
                db, email: email, passwordHash: passwordHash, role: role, active: active, now: now, changes: &changes)
        }
    }

    /// The one INSERT of a user (single creation and bulk import).
    func insertUser(
        _ db: Database, email: String, passwordHash: String, role: String, active: Bool, now: Int64,
        changes: inout [LiveView.Change]
    ) throws -> UserRecord {
        do {
            try db.cachedStatement(
                sql: """
                    INSERT INTO users (email, password_hash, role, active, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [email, passwordHash, role, active, now, now])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.emailTaken
        }
        let user = UserRecord(
            id: db.lastInsertedRowID, email: email, passwordHash: passwordHash, role: role, active: active,
            createdAt: now, updatedAt: now)
        changes.append(.upsertUser(user.snapshot))
        return user
    }

    public func user(id: Int64) throws -> UserRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]) }
            .map(UserRecord.init(row:))
    }

    public func user(email: String) throws -> UserRecord? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]) }
            .map(UserRecord.init(row:))
    }

    /// Users in creation order after the user with id `after`.
    public func listUsers(after: Int64, limit: Int) throws -> [UserRecord] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
        }.map(UserRecord.init(row:))
    }

    /// Changes role, active flag or email. Deactivation revokes every
    /// session of the user.
    public func updateUser(id: Int64, role: String?, active: Bool?, email: String?, now: Int64) throws
        -> UserRecord
    {
        try write { db, changes in
            guard
                var user = try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id])
                    .map(UserRecord.init(row:))
            else { throw StoreError.notFound }
            let deactivating = user.applyUpdate(role: role, email: email, active: active, now: now)
            do {
                try db.execute(
                    sql: """
                        UPDATE users SET email = ?, role = ?, active = ?, updated_at = ?, credential_generation = ?
                        WHERE id = ?
                        """,
                    arguments: [user.email, user.role, user.active, now, user.credentialGeneration, id])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                throw StoreError.emailTaken
            }
            if deactivating {
                try revokeSessions(db, userID: id, keeping: nil, reason: "deactivated", now: now, changes: &changes)
            }
            changes.append(.upsertUser(user.snapshot))
            return user
        }
    }

    /// Replaces the password hash and moves the credential generation;
    /// revokes every session except `keeping`. With `expectedGeneration`
    /// (a password change that checked the current password) nothing is
    /// written unless the generation is still that one, so a change in
    /// flight can never overwrite a reset an admin made in the meantime.
    @discardableResult
    public func setPasswordHash(
        userID: Int64, hash: String, keepingSession: String?, expectedGeneration: Int64? = nil, now: Int64
    ) throws -> Int {
        try write { db, changes in
            guard
                let generation = try Int64.fetchOne(
                    db, sql: "SELECT credential_generation FROM users WHERE id = ?", arguments: [userID])
            else { throw StoreError.notFound }
            if let expectedGeneration, expectedGeneration != generation { throw StoreError.credentialsChanged }
            try db.execute(
                sql: "UPDATE users SET password_hash = ?, updated_at = ?, credential_generation = ? WHERE id = ?",
                arguments: [hash, now, generation + 1, userID])
            return try revokeSessions(
                db, userID: userID, keeping: keepingSession, reason: "password changed", now: now,
                changes: &changes)
        }
    }

    /// Re-hashes at a higher cost after a successful login; touches nothing else.
    public func upgradePasswordHash(userID: Int64, from old: String, to new: String) throws {
        try write { db, _ in
            try db.execute(
                sql: "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                arguments: [new, userID, old])
        }
    }

    public func hasPasswordHash(prefix: String) throws -> Bool {
        try read { db in
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM users WHERE substr(password_hash, 1, ?) = ?)",
                arguments: [prefix.count, prefix]) ?? false
        }
    }

    public func deleteUser(id: Int64) throws {
        try write { db, changes in
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id])
            guard db.changesCount == 1 else { throw StoreError.notFound }
            changes.append(.deleteUser(id))
        }
    }
}

extension UserRecord {
    init(row: Row) {
        self.init(
            id: row["id"], email: row["email"], passwordHash: row["password_hash"], role: row["role"],
            active: row["active"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            credentialGeneration: row["credential_generation"], mfaEnabled: row["totp_confirmed"])
    }
}
