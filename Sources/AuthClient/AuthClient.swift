import AuthJSON
import Foundation

/// A client for authd, the local authentication daemon, over its Unix socket.
///
/// Thin by design: it speaks line-delimited JSON-RPC 2.0 and does no
/// cryptography; every check happens in authd. One `AuthClient` can be
/// shared by the whole process: concurrent calls share one connection
/// (pipelined, answers matched by id), a broken connection is re-opened on
/// the next call, and every call has a timeout.
///
/// ```swift
/// let auth = AuthClient()
/// do {
///     let verified = try await auth.verify(token: bearer, requiredRole: "editor")
///     print("allowed:", verified.user.email)
/// } catch AuthError.tokenExpired {
///     // ask the client to refresh
/// }
/// ```
///
/// `busy` and `rateLimited` answers are thrown as they come (with
/// ``AuthError/retryAfter``), never retried behind the caller's back.
public final class AuthClient: Sendable {
    /// The system socket, as `authd.socket` creates it.
    public static let defaultSocketPath = "/run/authd/authd.sock"

    public let socketPath: String
    /// How long a call waits for its answer.
    public let timeout: Duration

    private let state = StateBox()

    /// - Parameters:
    ///   - socketPath: the daemon's socket; defaults to `/run/authd/authd.sock`.
    ///   - timeout: how long each call waits for its answer (default 10 s).
    public init(socketPath: String = AuthClient.defaultSocketPath, timeout: Duration = .seconds(10)) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    deinit {
        state.connection?.close()
    }

    // MARK: Public methods

    /// Logs a user in and opens a session. A wrong email or password, or an
    /// inactive account, all throw ``AuthError/invalidCredentials``. When the
    /// account has a second factor, the right password throws
    /// ``AuthError/secondFactorRequired(mfaToken:expiresIn:)``: finish with
    /// ``mfa(token:code:client:)``.
    ///
    /// ```swift
    /// do {
    ///     session = try await auth.login(email: email, password: password)
    /// } catch AuthError.secondFactorRequired(let mfaToken, _) {
    ///     session = try await auth.mfa(token: mfaToken, code: askForCode())
    /// }
    /// ```
    /// - Parameter client: the end user's address or another per-client key,
    ///   for authd's failed-login limit (default: this process's uid).
    public func login(email: String, password: String, client: String? = nil) async throws -> LoginResult {
        var params: JSONObject = ["email": .string(email), "password": .string(password)]
        if let client { params["client"] = .string(client) }
        return try Self.loginResult(try Decoder(try await call("auth.login", params)))
    }

    /// The second step of a login whose account has a second factor: the
    /// `mfaToken` of ``AuthError/secondFactorRequired(mfaToken:expiresIn:)``
    /// and the user's current TOTP code, or one of their recovery codes.
    /// A wrong code, or a spent or expired token, throws
    /// ``AuthError/invalidCredentials`` (wrong codes count toward the
    /// account's failed-login limit).
    public func mfa(token: String, code: String, client: String? = nil) async throws -> LoginResult {
        var params: JSONObject = ["mfa_token": .string(token), "code": .string(code)]
        if let client { params["client"] = .string(client) }
        return try Self.loginResult(try Decoder(try await call("auth.mfa", params)))
    }

    private static func loginResult(_ d: Decoder) throws -> LoginResult {
        if (try? d.bool("mfa_required")) == true {
            throw AuthError.secondFactorRequired(
                mfaToken: try d.string("mfa_token"), expiresIn: try d.int("mfa_expires_in"))
        }
        return LoginResult(
            accessToken: try d.string("access_token"), refreshToken: try d.string("refresh_token"),
            tokenType: try d.string("token_type"), expiresIn: try d.int("expires_in"),
            refreshExpiresIn: try d.int("refresh_expires_in"), user: try AuthUser(try d.nested("user")))
    }

    /// Spends a refresh token for a new access and refresh token. Presenting
    /// a spent one throws ``AuthError/refreshReused`` and ends the session,
    /// unless the daemon has a grace window (`refresh_grace`): then, within
    /// it, the same token may be presented again (a retry after a lost
    /// answer, or another process of the same client) and answers with the
    /// same new refresh token as the first time, at most three times.
    public func refresh(refreshToken: String) async throws -> TokenPair {
        let d = try Decoder(try await call("auth.refresh", ["refresh_token": .string(refreshToken)]))
        return TokenPair(
            accessToken: try d.string("access_token"), refreshToken: try d.string("refresh_token"),
            expiresIn: try d.int("expires_in"), refreshExpiresIn: try d.int("refresh_expires_in"))
    }

    /// Ends the session of a refresh token.
    public func logout(refreshToken: String) async throws {
        _ = try await call("auth.logout", ["refresh_token": .string(refreshToken)])
    }

    /// Ends every session of the access token's user; returns how many.
    @discardableResult
    public func logoutAll(accessToken: String) async throws -> Int {
        Int(try Decoder(try await call("auth.logout_all", ["access_token": .string(accessToken)])).int("revoked"))
    }

    /// Verifies an access token (a leading `Bearer ` is fine) and that its
    /// user still exists and is active and its session is live; with
    /// `requiredRole`, that the user's current role is exactly that.
    public func verify(token: String, requiredRole: String? = nil) async throws -> Verification {
        var params: JSONObject = ["token": .string(token)]
        if let requiredRole { params["required_role"] = .string(requiredRole) }
        let d = try Decoder(try await call("token.verify", params))
        return Verification(
            user: try AuthUser(try d.nested("user")), claims: try d.nested("claims").object,
            expiresAt: try d.int("expires_at"))
    }

    /// The access token's user.
    public func me(accessToken: String) async throws -> UserRecord {
        try UserRecord(try Decoder(try await call("user.me", ["access_token": .string(accessToken)])))
    }

    /// Changes the token user's password; their other sessions end.
    public func changePassword(accessToken: String, currentPassword: String, newPassword: String) async throws {
        _ = try await call(
            "user.change_password",
            [
                "access_token": .string(accessToken), "current_password": .string(currentPassword),
                "new_password": .string(newPassword),
            ])
    }

    /// Starts enrolling a TOTP second factor for the token's user: a new
    /// secret, active once ``confirmSecondFactor(accessToken:code:)`` gets a
    /// code of it. ``AuthError/forbidden`` when one is already active.
    public func enrollSecondFactor(accessToken: String, currentPassword: String) async throws
        -> SecondFactorEnrolment
    {
        let d = try Decoder(
            try await call(
                "user.totp.enroll",
                ["access_token": .string(accessToken), "current_password": .string(currentPassword)]))
        return SecondFactorEnrolment(secret: try d.string("secret"), uri: try d.string("uri"))
    }

    /// Activates the enrolled second factor with a code of it; returns the
    /// ten one-time recovery codes (shown once: authd keeps only hashes).
    public func confirmSecondFactor(accessToken: String, code: String) async throws -> [String] {
        try Decoder(
            try await call("user.totp.confirm", ["access_token": .string(accessToken), "code": .string(code)])
        ).strings("recovery_codes")
    }

    /// Removes the token user's second factor: their password and a code
    /// (or a recovery code).
    public func disableSecondFactor(accessToken: String, currentPassword: String, code: String) async throws {
        _ = try await call(
            "user.totp.disable",
            [
                "access_token": .string(accessToken), "current_password": .string(currentPassword),
                "code": .string(code),
            ])
    }

    /// Ten new recovery codes in place of the old ones: the password and a
    /// code (or a recovery code).
    public func replaceRecoveryCodes(accessToken: String, currentPassword: String, code: String) async throws
        -> [String]
    {
        try Decoder(
            try await call(
                "user.totp.recovery_codes",
                [
                    "access_token": .string(accessToken), "current_password": .string(currentPassword),
                    "code": .string(code),
                ])
        ).strings("recovery_codes")
    }

    /// The public keys for offline verification (empty with HS256).
    public func jwks() async throws -> [JSONValue] {
        try Decoder(try await call("keys.jwks", [:])).array("keys")
    }

    /// Whether authd is serving.
    public func health() async throws -> Health {
        let d = try Decoder(try await call("sys.health", [:]))
        return Health(
            status: try d.string("status"), version: try d.string("version"), uptimeSeconds: try d.int("uptime_s"))
    }

    /// The admin methods. They are allowed for root, authd's configured
    /// admin uids and groups, or with an admin user's access token.
    public func admin(accessToken: String? = nil) -> Admin { Admin(client: self, accessToken: accessToken) }

    // MARK: Calls

    /// Sends one request and waits for its result; the raw JSON form, for
    /// methods this client has no typed wrapper for.
    public func call(_ method: String, _ params: JSONObject) async throws -> JSONValue {
        let connection = try state.connection(path: socketPath)
        let id = state.nextID()
        var request: JSONObject = ["jsonrpc": .string("2.0"), "id": .int(id), "method": .string(method)]
        request["params"] = .object(params)
        var line = JSONWriter.encode(.object(request))
        line.append(0x0A)
        let timeout = self.timeout
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, Error>) in
            connection.send(id: id, line: line) { result in continuation.resume(with: result.mapError { $0 }) }
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) {
                connection.fail(id: id, with: .timeout)
            }
        }
    }

    /// The shared connection, re-opened when it has died.
    private final class StateBox: @unchecked Sendable {
        private let lock = NSLock()
        private var current: ClientConnection?
        private var counter = 0

        var connection: ClientConnection? { lock.locked { current } }

        func connection(path: String) throws(AuthError) -> ClientConnection {
            lock.lock()
            defer { lock.unlock() }
            if let current, current.isAlive { return current }
            let fresh = try ClientConnection(path: path)
            current = fresh
            return fresh
        }

        func nextID() -> Int {
            lock.locked {
                counter += 1
                return counter
            }
        }
    }
}
