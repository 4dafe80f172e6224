import AuthCore
import AuthCrypto

/// `user.change_password`.
extension AuthService {
    // MARK: user.change_password

    func changePassword(_ context: CallContext) {
        let authenticated: Authenticated
        let current: String
        let new: String
        // The scheme the new password was checked for is the one it is
        // hashed in, whatever a reload changes while the job waits.
        let hashing = settings.passwordHashing
        do throws(AuthError) {
            // The token first, then the passwords (the contract's order).
            authenticated = try authenticate(
                try AccessTokenRequest(params: context.params).accessToken, peer: context.peer)
            let request = try ChangePasswordRequest(params: context.params, scheme: hashing.scheme)
            (current, new) = (request.currentPassword, request.newPassword)
        } catch {
            context.fail(error)
            return
        }
        // Wrong current passwords count like failed logins, so a stolen access
        // token cannot be used to guess the password.
        let accountKey = LoginThrottle.accountKey(authenticated.user.email)
        let clientKey = LoginThrottle.clientKey(peerUID: context.peer.uid, reported: nil, host: throttleHost)
        let lockEvent = SecurityEvent(
            .loginLock, "Password change refused: too many failed attempts", peerUID: context.peer.uid,
            peerPID: context.peer.pid, userID: authenticated.user.id, email: authenticated.user.email,
            reason: "rate_limited")
        throttled(context, account: accountKey, client: clientKey, lockEvent: lockEvent) { [self] attempt in
            replacePassword(authenticated, current: current, new: new, hashing: hashing, peer: context.peer) {
                [self] outcome, answer in
                gate.finish(attempt, outcome: outcome)
                context.respond(answer)
            }
        }
    }

    /// On a hashing worker: checks the current password, stores the new
    /// hash; `done` gets how the attempt counts and the answer.
    private func replacePassword(
        _ authenticated: Authenticated, current: String, new: String, hashing: PasswordHashing, peer: PeerCredentials,
        _ done: @escaping @Sendable (LoginThrottle.Outcome, Result<JSONValue, AuthError>) -> Void
    ) {
        let user: UserRecord
        switch checkedPassword(
            authenticated.user.id, current, peer: peer, refusal: "Password change refused: wrong current password")
        {
        case .failure(let refusal): return done(refusal.outcome, .failure(refusal.error))
        case .success(let record): user = record
        }
        let hash: String
        switch newPasswordHash(new, with: hashing) {
        case .success(let value): hash = value
        case .failure(let error): return done(.abandoned, .failure(error))
        }
        // Written only if nothing changed the credentials since the check
        // above: an admin's reset answered meanwhile is never overwritten.
        store.setPasswordHash(
            userID: user.id, hash: hash, keepingSession: authenticated.claims.sessionID,
            expectedGeneration: user.credentialGeneration, now: clock()
        ) { [self] result in
            switch result {
            case .failure(.credentialsChanged):
                // The password was right when checked: not a guess, so it
                // does not count against the account (a reset won the race).
                event(
                    .loginFail, "Password change refused: the credentials changed meanwhile", peer,
                    userID: user.id, email: user.email, reason: "credentials_changed")
                done(.abandoned, .failure(.invalidCredentials))
            case .failure(let error):
                done(.abandoned, .failure(AuthService.map(error)))
            case .success(let revoked):
                event(
                    .userUpdated, "Password changed; \(revoked) other sessions revoked", peer, userID: user.id,
                    email: user.email, reason: "password_changed")
                // With a second factor, a right password alone is not the
                // success that clears the account's failure count (only
                // auth.mfa's is): else codes could be guessed four at a time
                // between password changes.
                done(user.mfaEnabled ? .abandoned : .succeeded, .success(.object(["changed": .bool(true)])))
            }
        }
    }

    /// The user's stored record if `password` is their current one (on a
    /// hashing worker); a wrong one is a failed attempt, logged as
    /// `refusal` (`user.change_password` and the second factor's methods).
    func checkedPassword(
        _ userID: Int64, _ password: String, peer: PeerCredentials,
        refusal: String = "Refused: wrong current password"
    ) -> Result<UserRecord, Refusal> {
        let user: UserRecord
        switch waitFor({ store.user(id: userID, $0) }) {
        case .failure(let error): return .failure(Refusal(outcome: .abandoned, error: AuthService.map(error)))
        case .success(nil): return .failure(Refusal(outcome: .abandoned, error: .userNotFound))
        case .success(let record?): user = record
        }
        let scheme = PasswordHashing.scheme(of: user.passwordHash) ?? settings.passwordScheme
        guard PasswordPolicy.isUsableAtLogin(password, scheme: scheme),
            PasswordHashing.verify(Array(password.utf8), against: user.passwordHash)
        else {
            event(
                .loginFail, refusal, peer, userID: user.id, email: user.email, reason: "wrong_password")
            return .failure(Refusal(outcome: .failed, error: .invalidCredentials))
        }
        return .success(user)
    }
}
