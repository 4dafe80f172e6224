import AuthCore
import AuthCrypto
import AuthStore

extension AuthService {
    // MARK: auth.login

    func login(_ context: CallContext) {
        let email: String
        let password: String
        let client: String?
        do throws(AuthError) {
            email = try context.params.requiredString("email")
            password = try context.params.requiredString("password")
            client = try context.params.optionalString("client")
            if password.utf8.contains(0) {
                throw .invalidParams(field: "password", "Password must not contain NUL")
            }
        } catch {
            context.fail(error)
            return
        }
        let normalized = EmailRule.normalize(email)
        let accountKey = LoginThrottle.accountKey(EmailRule.accountKey(email))
        let clientKey = LoginThrottle.clientKey(client ?? "uid:\(context.peer.uid)")
        let clientLabel = client ?? "uid:\(context.peer.uid)"
        let lockEvent = SecurityEvent(
            .loginLock, "Login refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, client: clientLabel, email: normalized, reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] in
            runLogin(
                context, normalized: normalized, password: password, accountKey: accountKey, clientKey: clientKey,
                clientLabel: clientLabel)
        }
    }

    /// Reserves a place in the login throttle, then runs `job` on the hashing
    /// pool. `job` must end the attempt with `gate.finish`; a limit answers
    /// `429` (logging `lockEvent`) and a full pool `503 busy`.
    func throttled(
        _ context: CallContext, account: String, client: String, lockEvent: SecurityEvent,
        job: @escaping @Sendable () -> Void
    ) {
        gate.begin(account: account, client: client) { [self] decision in
            if case .limited(let retryAfter) = decision {
                record(lockEvent)
                context.fail(.rateLimited(retryAfter: retryAfter))
                return
            }
            if !hashPool.submit(job) {
                try? gate.finish(account: account, client: client, outcome: .abandoned)
                context.fail(.busy(retryAfter: hashPool.retryAfterEstimate))
            }
        }
    }

    /// On a hashing worker: one bcrypt check, whatever the email.
    private func runLogin(
        _ context: CallContext, normalized: String?, password: String, accountKey: String, clientKey: String,
        clientLabel: String
    ) {
        let settings = self.settings
        let user: UserRecord?
        do {
            user = try normalized.flatMap { try database.user(email: $0) }
        } catch {
            try? gate.finish(account: accountKey, client: clientKey, outcome: .abandoned)
            context.fail(mapError(error))
            return
        }
        let bytes = Array(password.utf8)
        let usable = PasswordPolicy.isUsableAtLogin(password)
        let matched: Bool
        if let user, usable {
            matched = Bcrypt.verify(bytes, hash: user.passwordHash)
        } else {
            _ = Bcrypt.verify(Array(bytes.prefix(PasswordPolicy.maximumBytes)), hash: dummyPasswordHash)
            matched = false
        }
        guard let user, matched, user.active else {
            let reason =
                normalized == nil
                ? "invalid_email"
                : user == nil
                    ? "unknown_user" : !usable ? "password_too_long" : matched ? "account_inactive" : "wrong_password"
            do {
                try gate.finish(account: accountKey, client: clientKey, outcome: .failed)
            } catch {
                logger.error("could not persist failure counters", metadata: ["cause": "\(error)"])
            }
            event(
                .loginFail, "Login failed", context.peer, client: clientLabel, userID: user?.id, email: normalized,
                reason: reason)
            context.fail(.invalidCredentials)
            return
        }
        do {
            try gate.finish(account: accountKey, client: clientKey, outcome: .succeeded)
            let result = try openSession(for: user.snapshot, settings: settings)
            event(
                .loginSuccess, "Login succeeded", context.peer, client: clientLabel, userID: user.id, email: user.email)
            event(
                .tokenCreated, "Session opened", context.peer, client: clientLabel, userID: user.id, email: user.email)
            context.respond(.success(result))
        } catch {
            context.fail(mapError(error))
            return
        }
        // A hash below the configured cost is upgraded now that the password is known.
        if let cost = Bcrypt.cost(of: user.passwordHash), cost < settings.bcryptCost,
            let upgraded = try? Bcrypt.hash(bytes, cost: settings.bcryptCost)
        {
            do {
                try database.upgradePasswordHash(userID: user.id, from: user.passwordHash, to: upgraded)
            } catch {
                logger.warning("could not upgrade a password hash", metadata: ["cause": "\(error)"])
            }
        }
    }

    /// Creates a session with its first refresh token and signs both tokens.
    func openSession(for user: UserSnapshot, settings: Settings) throws -> JSONValue {
        let now = clock()
        // 11 random bytes (88 bits) give a 15-character id, which Swift keeps
        // inline in a String: no allocation per live session in memory. The id
        // is not a secret on its own; it only travels inside signed tokens.
        // Never a leading '-': operators pass ids on command lines (`authctl
        // session revoke --id ID`), where that reads as an option.
        var sessionID = SecureRandom.identifier(byteCount: 11)
        while sessionID.hasPrefix("-") { sessionID = SecureRandom.identifier(byteCount: 11) }
        let refreshExpiry = now + settings.refreshTTL
        let refreshToken = signRefresh(userID: user.id, sessionID: sessionID, now: now, expiresAt: refreshExpiry)
        try database.createSession(
            id: sessionID, userID: user.id, refreshHash: Digest.sha256(Array(refreshToken.utf8)), now: now,
            expiresAt: refreshExpiry)
        let accessToken = signAccess(user: user, sessionID: sessionID, now: now, settings: settings)
        return .object([
            "access_token": .string(accessToken), "refresh_token": .string(refreshToken),
            "token_type": .string("Bearer"), "expires_in": .int(settings.accessTTL),
            "refresh_expires_in": .int(settings.refreshTTL), "user": user.briefJSON,
        ])
    }

    func signAccess(user: UserSnapshot, sessionID: String, now: Int64, settings: Settings) -> String {
        let claims = AccessClaims(
            userID: user.id, email: user.email, role: user.role, sessionID: sessionID,
            tokenID: SecureRandom.identifier(), issuedAt: now, expiresAt: now + settings.accessTTL)
        return JWSCodec.sign(
            claims: claims.jsonObject(policy: settings.tokenPolicy), kind: .access, key: keys.accessKeys.current)
    }

    func signRefresh(userID: Int64, sessionID: String, now: Int64, expiresAt: Int64) -> String {
        let claims = RefreshClaims(
            userID: userID, sessionID: sessionID, tokenID: SecureRandom.identifier(), issuedAt: now,
            expiresAt: expiresAt)
        return JWSCodec.sign(
            claims: claims.jsonObject(policy: settings.tokenPolicy), kind: .refresh, key: keys.refreshKeys.current)
    }

    /// Checks the request's refresh token, then runs `body` on the store pool
    /// with its claims and the SHA-256 the store knows it by.
    private func withRefreshToken(
        _ context: CallContext,
        _ body: @escaping @Sendable (_ claims: RefreshClaims, _ hash: [UInt8]) throws -> JSONValue
    ) {
        let claims: RefreshClaims
        let token: String
        do throws(AuthError) {
            (claims, token) = try refreshClaims(context)
        } catch {
            context.fail(error)
            return
        }
        run(on: storePool, context) { try body(claims, Digest.sha256(Array(token.utf8))) }
    }

    /// Checks a refresh token's signature and claims; any failure is
    /// `refresh_invalid` and is logged.
    private func refreshClaims(_ context: CallContext) throws(AuthError) -> (RefreshClaims, String) {
        let token = try context.params.bearerToken("refresh_token")
        let settings = self.settings
        do {
            let object = try JWSCodec.verify(
                token, kind: .refresh, keys: keys.refreshKeys, maximumBytes: settings.tokenPolicy.maximumTokenBytes)
            return (try ClaimsValidator.refresh(object, policy: settings.tokenPolicy, now: clock()), token)
        } catch {
            event(.tokenInvalid, "Refresh token refused", context.peer, reason: error.logReason)
            throw .refreshInvalid
        }
    }

    // MARK: auth.refresh

    func refresh(_ context: CallContext) {
        withRefreshToken(context) { [self] claims, presented in
            let settings = self.settings
            let now = clock()
            let expiry = now + settings.refreshTTL
            let next = signRefresh(userID: claims.userID, sessionID: claims.sessionID, now: now, expiresAt: expiry)
            let outcome = try database.rotateRefreshToken(
                sessionID: claims.sessionID, presented: presented, next: Digest.sha256(Array(next.utf8)), now: now,
                expiresAt: expiry)
            switch outcome {
            case .invalid(let why):
                event(.tokenInvalid, "Refresh token refused", context.peer, userID: claims.userID, reason: why)
                throw AuthError.refreshInvalid
            case .reused(let userID):
                event(
                    .tokenReuse, "Spent refresh token presented again; session revoked", context.peer, userID: userID,
                    reason: "refresh_reused")
                throw AuthError.refreshReused
            case .rotated(let user):
                event(.tokenRefreshed, "Tokens refreshed", context.peer, userID: user.id, email: user.email)
                return .object([
                    "access_token": .string(
                        signAccess(user: user, sessionID: claims.sessionID, now: now, settings: settings)),
                    "refresh_token": .string(next), "token_type": .string("Bearer"),
                    "expires_in": .int(settings.accessTTL), "refresh_expires_in": .int(settings.refreshTTL),
                ])
            }
        }
    }

    // MARK: auth.logout

    func logout(_ context: CallContext) {
        withRefreshToken(context) { [self] claims, presented in
            let outcome = try database.logout(sessionID: claims.sessionID, presented: presented, now: clock())
            switch outcome {
            case .invalid(let why):
                event(
                    .tokenInvalid, "Logout with an unusable refresh token", context.peer, userID: claims.userID,
                    reason: why)
                throw AuthError.refreshInvalid
            case .reused(let userID):
                event(
                    .tokenReuse, "Spent refresh token presented at logout; session revoked", context.peer,
                    userID: userID, reason: "refresh_reused")
                throw AuthError.refreshReused
            case .revoked(let userID):
                event(.tokenRevoked, "Logged out", context.peer, userID: userID, reason: "logout")
                return .object(["revoked": .bool(true)])
            }
        }
    }

    // MARK: auth.logout_all

    func logoutAll(_ context: CallContext) {
        let authenticated: Authenticated
        do throws(AuthError) {
            authenticated = try authenticate(try context.params.bearerToken("access_token"), peer: context.peer)
        } catch {
            context.fail(error)
            return
        }
        run(on: storePool, context) { [self] in
            let user = authenticated.user
            let count = try database.revokeSessions(userID: user.id, keeping: nil, reason: "logout_all", now: clock())
            event(
                .tokenRevoked, "Logged out of every session", context.peer, userID: user.id, email: user.email,
                reason: "logout_all")
            return .object(["revoked": .int(count)])
        }
    }
}
