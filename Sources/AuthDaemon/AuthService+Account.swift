import AuthCore
import AuthCrypto
import AuthStore

extension AuthService {
    // MARK: token.verify

    /// Inline on the event loop: one HMAC and one in-memory lookup.
    func verify(_ context: CallContext) {
        do throws(AuthError) {
            let token = try context.params.bearerToken("token")
            let requiredRole = try context.params.optionalString("required_role")
            let authenticated = try authenticate(token, peer: context.peer)
            if let requiredRole, authenticated.user.role != requiredRole {
                event(
                    .authzFail, "Token lacks the required role", context.peer, userID: authenticated.user.id,
                    reason: "required_role")
                throw AuthError.forbidden
            }
            context.respond(
                .success(
                    .object([
                        "user": authenticated.user.briefJSON, "claims": .object(authenticated.claimsObject),
                        "expires_at": .int(authenticated.claims.expiresAt),
                    ])))
        } catch {
            context.fail(error)
        }
    }

    // MARK: user.me

    func me(_ context: CallContext) {
        do throws(AuthError) {
            let authenticated = try authenticate(try context.params.bearerToken("access_token"), peer: context.peer)
            context.respond(.success(authenticated.user.publicJSON))
        } catch {
            context.fail(error)
        }
    }

    // MARK: user.change_password

    func changePassword(_ context: CallContext) {
        let authenticated: Authenticated
        let current: String
        let new: String
        do throws(AuthError) {
            authenticated = try authenticate(try context.params.bearerToken("access_token"), peer: context.peer)
            current = try context.params.requiredString("current_password")
            new = try context.params.requiredString("new_password")
            if current.utf8.contains(0) {
                throw .invalidParams(field: "current_password", "Password must not contain NUL")
            }
            try PasswordPolicy.validateNew(new, field: "new_password")
        } catch {
            context.fail(error)
            return
        }
        // Wrong current passwords count like failed logins, so a stolen access
        // token cannot be used to guess the password.
        let accountKey = LoginThrottle.accountKey(authenticated.user.email)
        let clientKey = LoginThrottle.clientKey("uid:\(context.peer.uid)")
        let lockEvent = SecurityEvent(
            .loginLock, "Password change refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, userID: authenticated.user.id, email: authenticated.user.email,
            reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] in
            var outcome = LoginThrottle.Outcome.abandoned
            defer { try? gate.finish(account: accountKey, client: clientKey, outcome: outcome) }
            do {
                let result = try replacePassword(
                    authenticated, current: current, new: new, peer: context.peer, outcome: &outcome)
                context.respond(.success(result))
            } catch {
                context.fail(mapError(error))
            }
        }
    }

    /// On a hashing worker: checks the current password, stores the new hash.
    private func replacePassword(
        _ authenticated: Authenticated, current: String, new: String, peer: PeerCredentials,
        outcome: inout LoginThrottle.Outcome
    ) throws -> JSONValue {
        guard let user = try database.user(id: authenticated.user.id) else { throw AuthError.userNotFound }
        guard PasswordPolicy.isUsableAtLogin(current), Bcrypt.verify(Array(current.utf8), hash: user.passwordHash)
        else {
            outcome = .failed
            event(
                .loginFail, "Password change refused: wrong current password", peer, userID: user.id,
                email: user.email, reason: "wrong_password")
            throw AuthError.invalidCredentials
        }
        outcome = .succeeded
        let hash = try Bcrypt.hash(Array(new.utf8), cost: settings.bcryptCost)
        let revoked = try database.setPasswordHash(
            userID: user.id, hash: hash, keepingSession: authenticated.claims.sessionID, now: clock())
        event(
            .userUpdated, "Password changed; \(revoked) other sessions revoked", peer, userID: user.id,
            email: user.email, reason: "password_changed")
        return .object(["changed": .bool(true)])
    }

    // MARK: keys.jwks

    func jwks(_ context: CallContext) {
        let settings = self.settings
        let keys = keys.publicJWKs(now: clock(), retention: settings.accessTTL + settings.clockLeeway)
        context.respond(.success(.object(["keys": .array(keys)])))
    }

    // MARK: sys.health, stats

    func health(_ context: CallContext) {
        context.respond(
            .success(
                .object([
                    "status": .string("ok"), "version": .string(AuthService.version),
                    "uptime_s": .int(clock() - startedAt),
                ])))
    }

    func statsResult(_ context: CallContext) {
        let counts = database.view.counts
        context.respond(
            .success(
                .object([
                    "uptime_s": .int(clock() - startedAt), "methods": stats.snapshot(),
                    "queues": .object([
                        "hash": .object(["depth": .int(hashPool.depth), "capacity": .int(hashPool.capacity)]),
                        "store": .object(["depth": .int(storePool.depth), "capacity": .int(storePool.capacity)]),
                    ]),
                    "users": .int(counts.users), "live_sessions": .int(counts.sessions),
                    "in_flight": .int(inFlight),
                ])))
    }
}
