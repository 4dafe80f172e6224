import AuthJSON

extension AuthClient {
    /// The admin methods of authd (`user.*`, `session.*`, `keys.rotate`,
    /// `stats`, `sys.metrics`). Callers that are not root or a configured admin uid/group
    /// pass an admin user's access token to ``AuthClient/admin(accessToken:)``.
    public struct Admin: Sendable {
        let client: AuthClient
        let accessToken: String?

        private func call(_ method: String, _ params: JSONObject) async throws -> JSONValue {
            var params = params
            if let accessToken { params["access_token"] = .string(accessToken) }
            return try await client.call(method, params)
        }

        public func createUser(email: String, password: String, role: String = "user", active: Bool = true)
            async throws -> UserRecord
        {
            try UserRecord(
                try Decoder(
                    try await call(
                        "user.create",
                        [
                            "email": .string(email), "password": .string(password), "role": .string(role),
                            "active": .bool(active),
                        ])))
        }

        public func user(id: String) async throws -> UserRecord {
            try UserRecord(try Decoder(try await call("user.get", ["id": .string(id)])))
        }

        public func user(email: String) async throws -> UserRecord {
            try UserRecord(try Decoder(try await call("user.get", ["email": .string(email)])))
        }

        /// One page of users in creation order; pass the page's `next` as `after`.
        public func listUsers(limit: Int = 100, after: String? = nil) async throws -> UserPage {
            var params: JSONObject = ["limit": .int(limit)]
            if let after { params["after"] = .string(after) }
            let d = try Decoder(try await call("user.list", params))
            let users = try d.array("users").map { try UserRecord(try Decoder($0)) }
            return UserPage(users: users, next: d.object["next"]?.stringValue)
        }

        /// Changes role, active flag or email; deactivation ends the user's sessions.
        public func updateUser(id: String, role: String? = nil, active: Bool? = nil, email: String? = nil)
            async throws -> UserRecord
        {
            var params: JSONObject = ["id": .string(id)]
            if let role { params["role"] = .string(role) }
            if let active { params["active"] = .bool(active) }
            if let email { params["email"] = .string(email) }
            return try UserRecord(try Decoder(try await call("user.update", params)))
        }

        /// Sets a new password; the user's sessions end.
        public func setPassword(id: String, password: String) async throws {
            _ = try await call("user.set_password", ["id": .string(id), "password": .string(password)])
        }

        public func deleteUser(id: String) async throws {
            _ = try await call("user.delete", ["id": .string(id)])
        }

        /// Removes a user's second factor (one who lost the authenticator
        /// and the recovery codes); false when they had none.
        @discardableResult
        public func resetSecondFactor(userID: String) async throws -> Bool {
            try Decoder(try await call("user.totp.reset", ["id": .string(userID)])).bool("reset")
        }

        /// A user's live sessions.
        public func sessions(userID: String) async throws -> [SessionInfo] {
            try Decoder(try await call("session.list", ["user_id": .string(userID)])).array("sessions").map {
                try SessionInfo(try Decoder($0))
            }
        }

        /// Ends one session; returns 1, or 0 if it had already ended.
        @discardableResult
        public func revokeSession(id: String) async throws -> Int {
            Int(try Decoder(try await call("session.revoke", ["id": .string(id)])).int("revoked"))
        }

        /// Ends every session of a user; returns how many.
        @discardableResult
        public func revokeSessions(userID: String) async throws -> Int {
            Int(try Decoder(try await call("session.revoke", ["user_id": .string(userID)])).int("revoked"))
        }

        /// Rotates the access-token signing key; returns the new `kid`.
        public func rotateKeys() async throws -> String {
            try Decoder(try await call("keys.rotate", [:])).string("kid")
        }

        /// Has the daemon write a backup of its database and key files into
        /// its state directory's `backups/` folder (SQLite only; on a shared
        /// PostgreSQL database it answers ``AuthError/unsupported``). The
        /// backup holds the signing keys: collect it, keep it as you keep
        /// the keys, and remove it there (it is deleted after an hour).
        public func backup() async throws -> BackupInfo {
            let d = try Decoder(try await call("sys.backup", [:]))
            return BackupInfo(
                directory: try d.string("directory"), createdAt: try d.int("created_at"),
                version: try d.string("version"),
                files: try d.array("files").map { value in
                    let file = try Decoder(value)
                    return BackupInfo.File(
                        path: try file.string("path"), bytes: try file.int("bytes"), sha256: try file.string("sha256"))
                },
                notIncluded: try d.strings("not_included"))
        }

        /// Counters, latency percentiles per method and queue depths.
        public func stats() async throws -> JSONObject {
            try Decoder(try await call("stats", [:])).object
        }

        /// The counters, latency histograms, queue depths and user and
        /// session counts of ``stats()`` in the Prometheus text exposition
        /// format (version 0.0.4), ending in a newline: ready for
        /// node_exporter's textfile collector once written to a `.prom` file.
        public func metrics() async throws -> String {
            try Decoder(try await call("sys.metrics", [:])).string("text")
        }
    }
}
