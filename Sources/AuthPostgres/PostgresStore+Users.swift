import AuthCore
import AuthServiceCore
import Dispatch
import Logging
import PostgresNIO

private typealias UserRow = (Int64, String, String, String, Bool, Int64, Int64, Int64, Bool)
private let userColumns =
    "SELECT id, email, password_hash, role, active, created_at, updated_at, credential_generation, totp_confirmed FROM users"

extension PostgresStore {
    public func createUser(
        email: String, passwordHash: String, role: String, active: Bool, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                let id = try await Self.mappingUniqueEmail { () -> Int64 in
                    var id: Int64 = 0
                    for try await found in try await connection.query(
                        """
                        INSERT INTO users (email, password_hash, role, active, created_at, updated_at)
                        VALUES (\(email), \(passwordHash), \(role), \(active), \(now), \(now)) RETURNING id
                        """, logger: logger
                    ).decode(Int64.self) {
                        id = found
                    }
                    return id
                }
                notes.user(id)
                return UserRecord(
                    id: id, email: email, passwordHash: passwordHash, role: role, active: active, createdAt: now,
                    updatedAt: now)
            }
        }
    }

    public func user(id: Int64, _ done: @escaping StoreCompletion<UserRecord?>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                try await Self.users(connection.query("\(unescaped: userColumns) WHERE id = \(id)", logger: logger))
                    .first
            }
        }
    }

    public func user(email: String, _ done: @escaping StoreCompletion<UserRecord?>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                try await Self.users(
                    connection.query("\(unescaped: userColumns) WHERE email = \(email)", logger: logger)
                ).first
            }
        }
    }

    public func listUsers(after: Int64, limit: Int, _ done: @escaping StoreCompletion<[UserRecord]>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                try await Self.users(
                    connection.query(
                        "\(unescaped: userColumns) WHERE id > \(after) ORDER BY id LIMIT \(limit)", logger: logger))
            }
        }
    }

    public func updateUser(
        id: Int64, role: String?, active: Bool?, email: String?, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                guard
                    var user = try await Self.users(
                        connection.query("\(unescaped: userColumns) WHERE id = \(id) FOR UPDATE", logger: logger)
                    ).first
                else { throw StoreError.notFound }
                let deactivating = user.applyUpdate(role: role, email: email, active: active, now: now)
                let updated = user
                _ = try await Self.mappingUniqueEmail {
                    try await connection.query(
                        """
                        UPDATE users SET email = \(updated.email), role = \(updated.role), active = \(updated.active),
                            updated_at = \(now), credential_generation = \(updated.credentialGeneration)
                        WHERE id = \(id)
                        """, logger: logger)
                }
                notes.user(id)
                if deactivating {
                    _ = try await revokeSessions(
                        connection, userID: id, keeping: nil, reason: "deactivated", now: now, notes: notes)
                }
                return user
            }
        }
    }

    public func setPasswordHash(
        userID: Int64, hash: String, keepingSession: String?, expectedGeneration: Int64?, now: Int64,
        _ done: @escaping StoreCompletion<Int>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                var generation: Int64?
                for try await found in try await connection.query(
                    "SELECT credential_generation FROM users WHERE id = \(userID) FOR UPDATE", logger: logger
                ).decode(Int64.self) {
                    generation = found
                }
                guard let generation else { throw StoreError.notFound }
                if let expectedGeneration, expectedGeneration != generation { throw StoreError.credentialsChanged }
                try await connection.query(
                    """
                    UPDATE users SET password_hash = \(hash), updated_at = \(now), credential_generation = \(generation + 1)
                    WHERE id = \(userID)
                    """, logger: logger)
                return try await revokeSessions(
                    connection, userID: userID, keeping: keepingSession, reason: "password changed", now: now,
                    notes: notes)
            }
        }
    }

    public func hasPasswordHash(prefix: String, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { [self] in
            try await read { [logger] connection in
                var found = false
                for try await exists in try await connection.query(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE starts_with(password_hash, \(prefix)))", logger: logger
                ).decode(Bool.self) {
                    found = exists
                }
                return found
            }
        }
    }

    public func upgradePasswordHash(
        userID: Int64, from old: String, to new: String, _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, _ in
                try await connection.query(
                    "UPDATE users SET password_hash = \(new) WHERE id = \(userID) AND password_hash = \(old)",
                    logger: logger)
                return ()
            }
        }
    }

    public func deleteUser(id: Int64, _ done: @escaping StoreCompletion<Void>) {
        complete(done) { [self] in
            try await write { [self] connection, notes in
                var deleted = false
                for try await _ in try await connection.query(
                    "DELETE FROM users WHERE id = \(id) RETURNING id", logger: logger
                ).decode(Int64.self) {
                    deleted = true
                }
                guard deleted else { throw StoreError.notFound }
                notes.user(id)
                return ()
            }
        }
    }

    // MARK: Failure counters

    public func loadFailureCounters() throws(StoreError) -> [String: LoginThrottle.Counter] {
        let result = Locked<Result<[String: LoginThrottle.Counter], StoreError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        complete({ outcome in
            result.withLock { $0 = outcome }
            finished.signal()
        }) { [self] in
            try await read { [logger] connection in
                var counters: [String: LoginThrottle.Counter] = [:]
                for try await (key, failures, windowStart) in try await connection.query(
                    "SELECT key, failures, window_start FROM login_failures", logger: logger
                ).decode((String, Int, Int64).self) {
                    counters[key] = .init(failures: failures, windowStart: windowStart)
                }
                return counters
            }
        }
        finished.wait()
        return try result.withLock { $0! }.get()
    }

    public func saveFailureCounters(
        _ current: @escaping @Sendable () -> [LoginThrottle.Change], _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, _ in
                for change in current() {
                    if let counter = change.counter {
                        try await connection.query(
                            """
                            INSERT INTO login_failures (key, failures, window_start)
                            VALUES (\(change.key), \(counter.failures), \(counter.windowStart))
                            ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                                window_start = excluded.window_start
                            """, logger: logger)
                    } else {
                        try await connection.query(
                            "DELETE FROM login_failures WHERE key = \(change.key)", logger: logger)
                    }
                }
                return ()
            }
        }
    }

    // MARK: Helpers

    private static func users(_ rows: PostgresRowSequence) async throws -> [UserRecord] {
        var users: [UserRecord] = []
        for try await row in rows.decode(UserRow.self) {
            users.append(
                UserRecord(
                    id: row.0, email: row.1, passwordHash: row.2, role: row.3, active: row.4, createdAt: row.5,
                    updatedAt: row.6, credentialGeneration: row.7, mfaEnabled: row.8))
        }
        return users
    }

    /// A unique violation on the email is `emailTaken`.
    private static func mappingUniqueEmail<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StoreError.emailTaken
        }
    }
}
