import AuthCore
import AuthCrypto

/// `auth.refresh`, `auth.logout` and `auth.logout_all`: rotation, reuse
/// detection and revocation.
extension AuthService {
    /// Checks the request's refresh token, then runs `body` on the store
    /// queue with its claims and the SHA-256 the store knows it by.
    /// With `rateLimited`, past `refresh_rate_limit` refreshes of the session
    /// in this second the answer is `429 rate_limited` without a store write.
    private func withRefreshToken(
        _ context: CallContext, rateLimited: Bool = false,
        _ body: @escaping @Sendable (_ claims: RefreshClaims, _ hash: [UInt8]) -> Void
    ) {
        let claims: RefreshClaims
        let token: String
        do throws(AuthError) {
            (claims, token) = try refreshClaims(context)
            if rateLimited, case .limited(let retryAfter) = admitRefresh(sessionID: claims.sessionID) {
                event(
                    .tokenInvalid, "Refresh refused: too many refreshes of one session", context.peer,
                    userID: claims.userID, reason: "refresh_rate_limited")
                throw .tooManyRefreshes(retryAfter: retryAfter)
            }
        } catch {
            context.fail(error)
            return
        }
        onStoreQueue(context) { body(claims, Digest.sha256(Array(token.utf8))) }
    }

    /// Checks a refresh token's signature and claims; any failure is
    /// `refresh_invalid` and is logged.
    private func refreshClaims(_ context: CallContext) throws(AuthError) -> (RefreshClaims, String) {
        let token = try RefreshTokenRequest(params: context.params).refreshToken
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
        withRefreshToken(context, rateLimited: true) { [self] claims, presented in
            let settings = self.settings
            let now = clock()
            let expiry = now + settings.refreshTTL
            let next = signRefresh(userID: claims.userID, sessionID: claims.sessionID, now: now, expiresAt: expiry)
            store.rotateRefreshToken(
                sessionID: claims.sessionID, presented: presented, presentedIssuedAt: claims.issuedAt,
                next: Digest.sha256(Array(next.utf8)), now: now, expiresAt: expiry
            ) { [self] result in
                context.answer(result) { outcome throws(AuthError) in
                    switch outcome {
                    case .invalid(let why):
                        event(.tokenInvalid, "Refresh token refused", context.peer, userID: claims.userID, reason: why)
                        throw .refreshInvalid
                    case .reused(let userID):
                        event(
                            .tokenReuse, "Spent refresh token presented again; session revoked", context.peer,
                            userID: userID, reason: "refresh_reused")
                        throw .refreshReused
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
        }
    }

    // MARK: auth.logout

    func logout(_ context: CallContext) {
        withRefreshToken(context) { [self] claims, presented in
            store.logout(
                sessionID: claims.sessionID, presented: presented, presentedIssuedAt: claims.issuedAt, now: clock()
            ) { [self] result in
                context.answer(result) { outcome throws(AuthError) in
                    switch outcome {
                    case .invalid(let why):
                        event(
                            .tokenInvalid, "Logout with an unusable refresh token", context.peer,
                            userID: claims.userID, reason: why)
                        throw .refreshInvalid
                    case .reused(let userID):
                        event(
                            .tokenReuse, "Spent refresh token presented at logout; session revoked", context.peer,
                            userID: userID, reason: "refresh_reused")
                        throw .refreshReused
                    case .revoked(let userID):
                        event(.tokenRevoked, "Logged out", context.peer, userID: userID, reason: "logout")
                        return .object(["revoked": .bool(true)])
                    }
                }
            }
        }
    }

    // MARK: auth.logout_all

    func logoutAll(_ context: CallContext) {
        let authenticated: Authenticated
        do throws(AuthError) {
            authenticated = try authenticate(
                try AccessTokenRequest(params: context.params).accessToken, peer: context.peer)
        } catch {
            context.fail(error)
            return
        }
        onStoreQueue(context) { [self] in
            let user = authenticated.user
            store.revokeSessions(userID: user.id, keeping: nil, reason: "logout_all", now: clock()) { [self] result in
                context.answer(result) { count in
                    event(
                        .tokenRevoked, "Logged out of every session", context.peer, userID: user.id,
                        email: user.email, reason: "logout_all")
                    return .object(["revoked": .int(count)])
                }
            }
        }
    }
}
