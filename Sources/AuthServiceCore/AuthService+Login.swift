import AuthCore
import AuthCrypto

/// `auth.login`: the throttle, one hash whatever the email, and the
/// session opened only if the credentials are still the ones checked.
extension AuthService {
    // MARK: auth.login

    func login(_ context: CallContext) {
        let request: LoginRequest
        do throws(AuthError) {
            request = try LoginRequest(params: context.params)
        } catch {
            context.fail(error)
            return
        }
        let (email, password, client) = (request.email, request.password, request.client)
        let normalized = EmailRule.normalize(email)
        let accountKey = LoginThrottle.accountKey(EmailRule.accountKey(email))
        let clientKey = LoginThrottle.clientKey(peerUID: context.peer.uid, reported: client, host: throttleHost)
        let clientLabel = client ?? "uid:\(context.peer.uid)"
        let lockEvent = SecurityEvent(
            .loginLock, "Login refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, client: clientLabel, email: normalized, reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] attempt in
            runLogin(context, normalized: normalized, password: password, attempt: attempt, clientLabel: clientLabel)
        }
    }

    /// The host's name in the default client key, when the failure counters
    /// are shared with other hosts.
    var throttleHost: String? {
        guard store.sharesLoginLimits else { return nil }
        let name = settings.instanceName
        return name.isEmpty ? "unnamed" : name
    }

    /// Reserves a place in the login throttle, then runs `job` on the hashing
    /// pool. `job` must end its attempt with `gate.finish`; a limit answers
    /// `429` (logging `lockEvent`) and a full pool `503 busy`.
    func throttled(
        _ context: CallContext, account: String, client: String, lockEvent: SecurityEvent,
        job: @escaping @Sendable (LoginAttempt) -> Void
    ) {
        let admitted = gate.begin(account: account, client: client) { [self] admission in
            let attempt: LoginAttempt
            switch admission {
            case .proceed(let admitted): attempt = admitted
            case .busy: return context.fail(.busy(retryAfter: hashQueue.retryAfterEstimate))
            case .unavailable: return context.fail(.unavailable())
            case .limited(let retryAfter):
                if gate.isFirstRefusal(account: account, client: client) {
                    record(lockEvent)
                } else {
                    // Refused again while locked: an ordinary failure (which
                    // floods aggregate), not another lock.
                    var refused = lockEvent
                    refused.name = .loginFail
                    record(refused)
                }
                context.fail(.rateLimited(retryAfter: retryAfter))
                return
            }
            submit(
                to: hashQueue, context,
                dropped: { [self] in gate.finish(attempt, outcome: .abandoned) }
            ) { job(attempt) }
        }
        if !admitted { context.fail(.busy(retryAfter: hashQueue.retryAfterEstimate)) }
    }

    /// On a hashing worker: one bcrypt check, whatever the email.
    private func runLogin(
        _ context: CallContext, normalized: String?, password: String, attempt: LoginAttempt,
        clientLabel: String
    ) {
        guard let normalized else {
            checkPassword(
                context, user: nil, email: nil, password: password, attempt: attempt, clientLabel: clientLabel)
            return
        }
        switch waitFor({ store.user(email: normalized, $0) }) {
        case .failure(let error):
            gate.finish(attempt, outcome: .abandoned)
            context.fail(AuthService.map(error))
        case .success(let user):
            checkPassword(
                context, user: user, email: normalized, password: password, attempt: attempt, clientLabel: clientLabel)
        }
    }

    /// The hash (against the user's, or a dummy one), then the session.
    private func checkPassword(
        _ context: CallContext, user: UserRecord?, email: String?, password: String, attempt: LoginAttempt,
        clientLabel: String
    ) {
        let settings = self.settings
        let bytes = Array(password.utf8)
        let (hashing, storedSchemes) = loginHashing
        let usable = PasswordPolicy.isUsableAtLogin(password, scheme: hashing.scheme(of: user?.passwordHash))
        let outcome = hashing.check(
            bytes, against: user?.passwordHash, usable: usable, storedSchemes: storedSchemes)
        let matched = outcome.matched
        if let user, !outcome.storedHashCheckable {
            log.log(
                .warning,
                "a stored password hash cannot be checked (no known scheme, malformed, or over the limits and max_hash_memory_mib)",
                metadata: ["user_id": "\(user.id)"])
        }
        guard let user, matched, user.active else {
            let reason = LoginFailure.reason(
                emailValid: email != nil, userFound: user != nil, passwordUsable: usable, matched: matched)
            failLogin(
                context, attempt: attempt, clientLabel: clientLabel,
                userID: user?.id, email: email, reason: reason)
            return
        }
        if user.mfaEnabled {
            // A right password on an account with a second factor: no
            // session yet, and the attempt counts as neither a failure nor
            // the success that clears the account's count (only auth.mfa's
            // does), so codes cannot be guessed four at a time for ever.
            secondFactorChallenge(for: user) { [self] answer in
                gate.finish(attempt, outcome: .abandoned)
                context.respond(answer)
            }
            upgradeHashIfCheap(user, password: bytes, settings: settings)
            return
        }
        // The session opens only if, at its commit, the account is still
        // active with the credentials just checked: a password change,
        // reset or deactivation that lands while the hash ran wins.
        completeLogin(
            context, attempt: attempt, user: user.snapshot, credentialGeneration: user.credentialGeneration,
            settings: settings, clientLabel: clientLabel, viaSecondFactor: false
        ) { [self] in
            failLogin(
                context, attempt: attempt, clientLabel: clientLabel,
                userID: user.id, email: email, reason: "credentials_changed")
        }
        // Meanwhile, on this worker: the password is known, so a cheaper
        // hash is replaced. The swap is on the hash just checked, so a
        // password changed meanwhile keeps its own.
        upgradeHashIfCheap(user, password: bytes, settings: settings)
    }

    /// Opens the session a checked login earned (its password, and its
    /// second factor when `viaSecondFactor`), answers the call, ends the
    /// attempt and logs the events. The session opens only if, at its
    /// commit, the account is still active at `credentialGeneration`; else
    /// `credentialsChanged` runs (which must answer and end the attempt).
    /// Runs on a hashing worker, and waits only for a place among
    /// `sessionWrites`: the worker is free for its next hash while a
    /// networked store writes the session (SQLite writes it before this
    /// returns).
    func completeLogin(
        _ context: CallContext, attempt: LoginAttempt, user: UserSnapshot, credentialGeneration: Int64,
        settings: Settings, clientLabel: String, viaSecondFactor: Bool,
        credentialsChanged: @escaping @Sendable () -> Void
    ) {
        sessionWrites.wait()
        openSession(
            for: user, settings: settings, peer: context.peer, credentialGeneration: credentialGeneration
        ) { [self] result in
            sessionWrites.signal()
            answerLogin(
                context, result, attempt: attempt, user: user, clientLabel: clientLabel,
                viaSecondFactor: viaSecondFactor, credentialsChanged: credentialsChanged)
        }
    }

    /// The answer to a login once its session's write has ended.
    private func answerLogin(
        _ context: CallContext, _ result: Result<JSONValue, StoreError>, attempt: LoginAttempt, user: UserSnapshot,
        clientLabel: String, viaSecondFactor: Bool, credentialsChanged: () -> Void
    ) {
        switch result {
        case .failure(.credentialsChanged):
            credentialsChanged()
        case .failure(let error):
            gate.finish(attempt, outcome: .abandoned)
            context.fail(AuthService.map(error))
        case .success(let answer):
            gate.finish(attempt, outcome: .succeeded)
            if viaSecondFactor {
                event(
                    .mfaSuccess, "Second factor accepted", context.peer, client: clientLabel, userID: user.id,
                    email: user.email)
            }
            event(
                .loginSuccess, "Login succeeded", context.peer, client: clientLabel, userID: user.id,
                email: user.email, reason: viaSecondFactor ? "mfa" : nil)
            event(
                .tokenCreated, "Session opened", context.peer, client: clientLabel, userID: user.id,
                email: user.email)
            context.respond(.success(answer))
        }
    }

    /// A hash in another scheme, below the configured bcrypt cost or with
    /// other argon2id parameters is replaced now that the password is
    /// known: a compare-and-swap on the hash just verified, which leaves
    /// the credential generation alone (it is the same password).
    private func upgradeHashIfCheap(_ user: UserRecord, password: [UInt8], settings: Settings) {
        let hashing = settings.passwordHashing
        // A password longer than the configured scheme takes keeps its hash:
        // bcrypt would cut it at 72 bytes, and the account would no longer
        // log in with it.
        guard hashing.shouldReplace(user.passwordHash), password.count <= hashing.scheme.maximumPasswordBytes,
            let upgraded = try? hashing.hash(password)
        else { return }
        store.upgradePasswordHash(userID: user.id, from: user.passwordHash, to: upgraded) { [self] result in
            if case .failure(let error) = result {
                log.log(.warning, "could not upgrade a password hash", metadata: ["cause": "\(error)"])
            }
        }
    }

    /// A refused login: counts as a failure, logged with its real reason,
    /// answered `401 invalid_credentials` whatever that reason was.
    private func failLogin(
        _ context: CallContext, attempt: LoginAttempt, clientLabel: String, userID: Int64?,
        email: String?, reason: String
    ) {
        gate.finish(attempt, outcome: .failed)
        event(
            .loginFail, "Login failed", context.peer, client: clientLabel, userID: userID, email: email, reason: reason)
        context.fail(.invalidCredentials)
    }

    /// Creates a session with its first refresh token and signs both tokens.
    /// With `credentialGeneration`, the session opens only if the user is
    /// still active at that generation (else `StoreError.credentialsChanged`).
    /// Sessions revoked to stay under `max_sessions_per_user` are logged.
    func openSession(
        for user: UserSnapshot, settings: Settings, peer: PeerCredentials, credentialGeneration: Int64?,
        _ done: @escaping StoreCompletion<JSONValue>
    ) {
        let now = clock()
        // 11 random bytes (88 bits) give a 15-character id, which Swift keeps
        // inline in a String: no allocation per live session in memory. The id
        // is not a secret on its own; it only travels inside signed tokens.
        // Never a leading '-': operators pass ids on command lines (`authctl
        // session revoke --id ID`), where that reads as an option.
        var newID = SecureRandom.identifier(byteCount: 11)
        while newID.hasPrefix("-") { newID = SecureRandom.identifier(byteCount: 11) }
        let sessionID = newID
        let refreshExpiry = now + settings.refreshTTL
        let refreshToken = signRefresh(userID: user.id, sessionID: sessionID, now: now, expiresAt: refreshExpiry)
        store.createSession(
            id: sessionID, userID: user.id, refreshHash: Digest.sha256(Array(refreshToken.utf8)), now: now,
            expiresAt: refreshExpiry,
            guard: SessionGuard(
                credentialGeneration: credentialGeneration, maximumSessions: settings.maxSessionsPerUser)
        ) { [self] result in
            done(
                result.map { evicted in
                    if !evicted.isEmpty {
                        event(
                            .tokenRevoked,
                            "\(evicted.count) least recently used sessions revoked: session limit reached", peer,
                            userID: user.id, email: user.email, reason: "session_limit")
                    }
                    let accessToken = signAccess(user: user, sessionID: sessionID, now: now, settings: settings)
                    return .object([
                        "access_token": .string(accessToken), "refresh_token": .string(refreshToken),
                        "token_type": .string("Bearer"), "expires_in": .int(settings.accessTTL),
                        "refresh_expires_in": .int(settings.refreshTTL), "user": user.briefJSON,
                    ])
                })
        }
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
}
