import AuthCore
import AuthCrypto

/// The TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s): enrolment,
/// confirmation, disabling, recovery codes, the admin's reset, and
/// `auth.mfa`, the second step of a login whose account has one.
///
/// Every check of a password or a code runs through the login throttle on
/// the account's key: wrong ones count as failed logins. While a second
/// factor is active, only a successful `auth.mfa` clears the account's
/// count: a right password, or a right code in another method, ends its
/// attempt as neither (else anyone holding the password could guess codes
/// for ever, four at a time).
extension AuthService {
    /// How long the `mfa_token` of a right password may be used.
    static let mfaTokenLifetime: Int64 = 300

    /// `user.totp.enroll`: a new secret, unconfirmed until a code of it
    /// comes back through `user.totp.confirm`.
    func enrollSecondFactor(_ context: CallContext) {
        let authenticated: Authenticated
        let request: EnrollSecondFactorRequest
        do throws(AuthError) {
            request = try EnrollSecondFactorRequest(params: context.params)
            authenticated = try authenticate(request.accessToken, peer: context.peer)
        } catch {
            return context.fail(error)
        }
        throttledForUser(context, authenticated.user, what: "Second factor enrolment") { [self] attempt, done in
            let user: UserRecord
            switch checkedPassword(authenticated.user.id, request.currentPassword, peer: context.peer) {
            case .failure(let refusal): return done(refusal.outcome, .failure(refusal.error))
            case .success(let record): user = record
            }
            let secret = TOTP.newSecret()
            let sealed: [UInt8]
            do {
                sealed = try sealSecondFactor(secret, userID: user.id)
            } catch {
                return done(.abandoned, .failure(.internalError("cannot seal a TOTP secret: \(error)")))
            }
            switch waitFor({ store.beginSecondFactor(userID: user.id, sealedSecret: sealed, now: clock(), $0) }) {
            case .failure(let error): return done(.abandoned, .failure(AuthService.map(error)))
            case .success(false): return done(.abandoned, .failure(.secondFactorAlreadyEnabled))
            case .success(true): break
            }
            event(
                .userUpdated, "Second factor enrolment started", context.peer, userID: user.id, email: user.email,
                reason: "mfa_enrol")
            // The password was right and no second factor is active yet.
            let totp = try! TOTP(secret: secret)
            done(
                .succeeded,
                .success(
                    .object([
                        "secret": .string(Base32.encode(secret)),
                        "uri": .string(totp.uri(issuer: settings.issuer, account: user.email)),
                    ])))
        }
    }

    /// `user.totp.confirm`: a code of the enrolled secret activates it and
    /// answers the ten recovery codes (shown once, stored as hashes).
    func confirmSecondFactor(_ context: CallContext) {
        let authenticated: Authenticated
        let request: ConfirmSecondFactorRequest
        do throws(AuthError) {
            request = try ConfirmSecondFactorRequest(params: context.params)
            authenticated = try authenticate(request.accessToken, peer: context.peer)
        } catch {
            return context.fail(error)
        }
        let user = authenticated.user
        throttledForUser(context, user, what: "Second factor confirmation") { [self] _, done in
            let factor: SecondFactorRecord
            switch waitFor({ store.secondFactor(userID: user.id, $0) }) {
            case .failure(let error): return done(.abandoned, .failure(AuthService.map(error)))
            case .success(let found?) where !found.confirmed: factor = found
            case .success:
                mfaFailed(context.peer, user: user, reason: "nothing_to_confirm")
                return done(.abandoned, .failure(.invalidCredentials))
            }
            let now = clock()
            guard let totp = openSecondFactor(factor, userID: user.id) else {
                return done(.abandoned, .failure(.internalError("a TOTP secret does not open")))
            }
            guard let step = totp.matchingStep(request.code, at: now) else {
                mfaFailed(context.peer, user: user, reason: "wrong_code")
                return done(.failed, .failure(.invalidCredentials))
            }
            let codes = (0..<RecoveryCode.count).map { _ in RecoveryCode.generate() }
            let confirmed = waitFor {
                store.confirmSecondFactor(
                    userID: user.id, sealedSecret: factor.sealedSecret, step: step,
                    recoveryCodeHashes: codes.compactMap(RecoveryCode.hash), now: now, $0)
            }
            switch confirmed {
            case .failure(let error): return done(.abandoned, .failure(AuthService.map(error)))
            case .success(false):
                // Enrolled again, or confirmed, by another request meanwhile.
                mfaFailed(context.peer, user: user, reason: "enrolment_changed")
                return done(.abandoned, .failure(.invalidCredentials))
            case .success(true): break
            }
            event(.mfaSuccess, "Second factor confirmed", context.peer, userID: user.id, reason: "confirm")
            event(
                .userUpdated, "Second factor enabled", context.peer, userID: user.id, email: user.email,
                reason: "mfa_enabled")
            done(.abandoned, .success(.object(["recovery_codes": .array(codes.map(JSONValue.string))])))
        }
    }

    /// `user.totp.disable`: the password and a code (or a recovery code).
    func disableSecondFactor(_ context: CallContext) {
        changeSecondFactor(context, what: "Second factor removal") { [self] user, done in
            switch waitFor({ store.removeSecondFactor(userID: user.id, now: clock(), $0) }) {
            case .failure(let error): done(.failure(AuthService.map(error)))
            case .success:
                event(
                    .userUpdated, "Second factor disabled", context.peer, userID: user.id, email: user.email,
                    reason: "mfa_disabled")
                done(.success(.object(["disabled": .bool(true)])))
            }
        }
    }

    /// `user.totp.recovery_codes`: ten new recovery codes in place of the
    /// old ones, for the password and a code.
    func replaceRecoveryCodes(_ context: CallContext) {
        changeSecondFactor(context, what: "Recovery code replacement") { [self] user, done in
            let codes = (0..<RecoveryCode.count).map { _ in RecoveryCode.generate() }
            let replaced = waitFor {
                store.replaceRecoveryCodes(userID: user.id, hashes: codes.compactMap(RecoveryCode.hash), $0)
            }
            switch replaced {
            case .failure(let error): done(.failure(AuthService.map(error)))
            case .success(false): done(.failure(.invalidCredentials))
            case .success(true):
                event(
                    .userUpdated, "Recovery codes replaced", context.peer, userID: user.id, email: user.email,
                    reason: "mfa_recovery_codes")
                done(.success(.object(["recovery_codes": .array(codes.map(JSONValue.string))])))
            }
        }
    }

    /// `user.totp.reset` (admin): removes a user's second factor, for a
    /// user who lost both the authenticator and the recovery codes.
    func resetSecondFactor(_ context: CallContext) throws(AuthError) {
        let request = try ResetSecondFactorRequest(params: context.params)
        onStoreQueue(context) { [self] in
            store.user(id: request.id) { [self] found in
                context.then(found) { user in
                    guard let user else { return context.fail(.notFound) }
                    store.removeSecondFactor(userID: user.id, now: clock()) { [self] removed in
                        context.answer(removed) { removed in
                            if removed {
                                event(
                                    .userUpdated, "Second factor reset by an admin", context.peer, userID: user.id,
                                    email: user.email, reason: "mfa_reset")
                            }
                            return .object(["reset": .bool(removed)])
                        }
                    }
                }
            }
        }
    }

    // MARK: auth.mfa

    /// The second step of a login: the `mfa_token` of a right password and
    /// a code (or a recovery code) open the session, if the credentials are
    /// still those the password was checked against.
    func mfa(_ context: CallContext) {
        let request: MFARequest
        do throws(AuthError) {
            request = try MFARequest(params: context.params)
        } catch {
            return context.fail(error)
        }
        let tokenHash = Digest.sha256(Array(request.mfaToken.utf8))
        let clientLabel = request.client ?? "uid:\(context.peer.uid)"
        onStoreQueue(context) { [self] in
            store.mfaChallenge(tokenHash: tokenHash, now: clock()) { [self] found in
                context.then(found) { challenge in
                    guard let challenge else {
                        event(
                            .mfaFail, "Second factor refused: unknown, spent or expired mfa_token", context.peer,
                            client: clientLabel, reason: "bad_mfa_token")
                        return context.fail(.invalidCredentials)
                    }
                    store.user(id: challenge.userID) { [self] found in
                        context.then(found) { user in
                            // Void already (the password changed, the account
                            // was deactivated): refused before any code is
                            // spent on it. The session's guard checks again.
                            guard let user, user.active, user.credentialGeneration == challenge.credentialGeneration
                            else {
                                event(
                                    .mfaFail, "Second factor refused: the credentials changed since the password",
                                    context.peer, client: clientLabel, userID: challenge.userID,
                                    reason: "credentials_changed")
                                return context.fail(.invalidCredentials)
                            }
                            finishMFA(
                                context, request: request, tokenHash: tokenHash, challenge: challenge, user: user,
                                clientLabel: clientLabel)
                        }
                    }
                }
            }
        }
    }

    private func finishMFA(
        _ context: CallContext, request: MFARequest, tokenHash: [UInt8], challenge: MFAChallenge, user: UserRecord,
        clientLabel: String
    ) {
        let accountKey = LoginThrottle.accountKey(EmailRule.accountKey(user.email))
        let clientKey = LoginThrottle.clientKey(peerUID: context.peer.uid, reported: request.client, host: throttleHost)
        let lockEvent = SecurityEvent(
            .loginLock, "Second factor refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, client: clientLabel, userID: user.id, email: user.email,
            reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] attempt in
            let snapshot = user.snapshot
            if let refusal = checkSecondFactorCode(
                request.code, user: snapshot, peer: context.peer, client: clientLabel)
            {
                gate.finish(attempt, outcome: refusal.outcome)
                return context.fail(refusal.error)
            }
            // Spent before the session opens: of two requests with one
            // token (and two right codes), one opens a session.
            switch waitFor({ store.spendMFAChallenge(tokenHash: tokenHash, now: clock(), $0) }) {
            case .failure(let error):
                gate.finish(attempt, outcome: .abandoned)
                return context.fail(AuthService.map(error))
            case .success(false):
                gate.finish(attempt, outcome: .abandoned)
                mfaFailed(context.peer, user: snapshot, client: clientLabel, reason: "mfa_token_spent")
                return context.fail(.invalidCredentials)
            case .success(true): break
            }
            completeLogin(
                context, attempt: attempt, user: snapshot, credentialGeneration: challenge.credentialGeneration,
                settings: settings, clientLabel: clientLabel, viaSecondFactor: true
            ) { [self] in
                // The password changed (or the account was deactivated)
                // since it was checked: the token is void.
                gate.finish(attempt, outcome: .abandoned)
                mfaFailed(context.peer, user: snapshot, client: clientLabel, reason: "credentials_changed")
                context.fail(.invalidCredentials)
            }
        }
    }

    /// The answer to a right password on an account with a second factor:
    /// a single-use `mfa_token` for `auth.mfa`, bound to the user and to
    /// the credentials just checked, and no tokens.
    func secondFactorChallenge(for user: UserRecord, _ done: @escaping @Sendable (Result<JSONValue, AuthError>) -> Void)
    {
        let token = Base64URL.encode(SecureRandom.bytes(32))
        let challenge = MFAChallenge(
            userID: user.id, credentialGeneration: user.credentialGeneration,
            expiresAt: clock() + Self.mfaTokenLifetime)
        store.createMFAChallenge(tokenHash: Digest.sha256(Array(token.utf8)), challenge) { result in
            done(
                result.map { _ in
                    .object([
                        "mfa_required": .bool(true), "mfa_token": .string(token),
                        "mfa_expires_in": .int(Self.mfaTokenLifetime),
                    ])
                }.mapError(AuthService.map))
        }
    }

    // MARK: Helpers

    /// Why a check refused, and how its attempt counts.
    struct Refusal: Error {
        let outcome: LoginThrottle.Outcome
        let error: AuthError
    }

    /// The login throttle on the user's account key and the peer's client
    /// key, for a method taking an access token; `job` runs on a hashing
    /// worker and hands back how its attempt counts with the answer.
    private func throttledForUser(
        _ context: CallContext, _ user: UserSnapshot, what: String,
        _ job:
            @escaping @Sendable (
                LoginAttempt, @escaping @Sendable (LoginThrottle.Outcome, Result<JSONValue, AuthError>) -> Void
            ) -> Void
    ) {
        let accountKey = LoginThrottle.accountKey(user.email)
        let clientKey = LoginThrottle.clientKey(peerUID: context.peer.uid, reported: nil, host: throttleHost)
        let lockEvent = SecurityEvent(
            .loginLock, "\(what) refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, userID: user.id, email: user.email, reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] attempt in
            job(attempt) { [self] outcome, answer in
                gate.finish(attempt, outcome: outcome)
                context.respond(answer)
            }
        }
    }

    /// Disabling and new recovery codes: the access token, the current
    /// password and a code, each wrong one a failed attempt; `change` runs
    /// once all are right (on a hashing worker).
    private func changeSecondFactor(
        _ context: CallContext, what: String,
        _ change: @escaping @Sendable (UserRecord, @escaping @Sendable (Result<JSONValue, AuthError>) -> Void) -> Void
    ) {
        let authenticated: Authenticated
        let request: SecondFactorChangeRequest
        do throws(AuthError) {
            request = try SecondFactorChangeRequest(params: context.params)
            authenticated = try authenticate(request.accessToken, peer: context.peer)
        } catch {
            return context.fail(error)
        }
        throttledForUser(context, authenticated.user, what: what) { [self] _, done in
            let user: UserRecord
            switch checkedPassword(authenticated.user.id, request.currentPassword, peer: context.peer) {
            case .failure(let refusal): return done(refusal.outcome, .failure(refusal.error))
            case .success(let record): user = record
            }
            if let refusal = checkSecondFactorCode(request.code, user: user.snapshot, peer: context.peer) {
                return done(refusal.outcome, .failure(refusal.error))
            }
            // Right password and code: neither a failure nor, while the
            // factor is active, the success that clears the count.
            change(user) { answer in done(.abandoned, answer) }
        }
    }

    /// Checks a code of the user's confirmed second factor, or one of their
    /// recovery codes, spending it (each works once); nil when accepted.
    private func checkSecondFactorCode(_ code: String, user: UserSnapshot, peer: PeerCredentials, client: String? = nil)
        -> Refusal?
    {
        let factor: SecondFactorRecord
        switch waitFor({ store.secondFactor(userID: user.id, $0) }) {
        case .failure(let error): return Refusal(outcome: .abandoned, error: AuthService.map(error))
        case .success(let found?) where found.confirmed: factor = found
        case .success:
            // Reset or disabled since: nothing to check the code against.
            mfaFailed(peer, user: user, client: client, reason: "no_second_factor")
            return Refusal(outcome: .abandoned, error: .invalidCredentials)
        }
        if let hash = RecoveryCode.hash(code) {
            switch waitFor({ store.spendRecoveryCode(userID: user.id, hash: hash, $0) }) {
            case .failure(let error): return Refusal(outcome: .abandoned, error: AuthService.map(error))
            case .success(true):
                event(.mfaSuccess, "Recovery code used", peer, client: client, userID: user.id, reason: "recovery_code")
                return nil
            case .success(false):
                mfaFailed(peer, user: user, client: client, reason: "wrong_recovery_code")
                return Refusal(outcome: .failed, error: .invalidCredentials)
            }
        }
        guard let totp = openSecondFactor(factor, userID: user.id) else {
            // Not the user's doing (the key-encryption key was replaced):
            // no failure counted against them.
            return Refusal(outcome: .abandoned, error: .internalError("a TOTP secret does not open"))
        }
        guard let step = totp.matchingStep(code, at: clock()), step > (factor.lastStep ?? -1) else {
            mfaFailed(peer, user: user, client: client, reason: "wrong_code")
            return Refusal(outcome: .failed, error: .invalidCredentials)
        }
        let accepted = waitFor {
            store.acceptSecondFactorStep(userID: user.id, sealedSecret: factor.sealedSecret, step: step, $0)
        }
        switch accepted {
        case .failure(let error): return Refusal(outcome: .abandoned, error: AuthService.map(error))
        case .success(true): return nil
        case .success(false):
            // Accepted by another request (another host) meanwhile.
            mfaFailed(peer, user: user, client: client, reason: "code_used")
            return Refusal(outcome: .failed, error: .invalidCredentials)
        }
    }

    private func mfaFailed(_ peer: PeerCredentials, user: UserSnapshot, client: String? = nil, reason: String) {
        event(
            .mfaFail, "Second factor refused", peer, client: client, userID: user.id, email: user.email, reason: reason)
    }

    private func sealSecondFactor(_ secret: [UInt8], userID: Int64) throws -> [UInt8] {
        guard let key = sealingKeyNow else { throw SettingsError("no key-encryption key") }
        return try AESGCM.seal(
            secret, key: key.bytes, associatedData: SecondFactorRecord.sealingContext(userID: userID))
    }

    /// The factor's generator; nil (logged) when its secret does not open
    /// (the key-encryption key was replaced).
    private func openSecondFactor(_ factor: SecondFactorRecord, userID: Int64) -> TOTP? {
        guard let key = sealingKeyNow,
            let secret = try? AESGCM.open(
                factor.sealedSecret, key: key.bytes, associatedData: SecondFactorRecord.sealingContext(userID: userID)),
            let totp = try? TOTP(secret: secret)
        else {
            log.log(
                .error, "a TOTP secret does not open with the key-encryption key", metadata: ["user_id": "\(userID)"])
            return nil
        }
        return totp
    }
}
