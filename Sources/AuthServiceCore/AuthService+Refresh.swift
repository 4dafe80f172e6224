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
            let (settings, sealingKey) = refreshSealing
            let now = clock()
            let expiry = now + settings.refreshTTL
            let next = signRefresh(userID: claims.userID, sessionID: claims.sessionID, now: now, expiresAt: expiry)
            let grace: RefreshGrace?
            do {
                grace = try sealForGrace(
                    next, sessionID: claims.sessionID, spentHash: presented, settings: settings, key: sealingKey)
            } catch {
                return context.fail(.internalError("cannot seal a refresh token's successor: \(error)"))
            }
            store.rotateRefreshToken(
                sessionID: claims.sessionID, presented: presented, presentedIssuedAt: claims.issuedAt,
                next: Digest.sha256(Array(next.utf8)), now: now, expiresAt: expiry, grace: grace
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
                    case .replayed(let user, let sealedNext, let successorExpiresAt):
                        // Opened with the key of now: one replaced since the
                        // successor was sealed cannot open it.
                        guard let kept = openKept(sealedNext, sessionID: claims.sessionID, spentHash: presented)
                        else {
                            event(
                                .tokenInvalid, "Refresh token refused: its kept successor does not open",
                                context.peer, userID: user.id, reason: "grace_unreadable")
                            throw .refreshInvalid
                        }
                        event(
                            .tokenRefreshed,
                            "Spent refresh token presented again within the grace window; same successor",
                            context.peer, userID: user.id, email: user.email, reason: "refresh_grace")
                        return tokenPair(
                            user: user, sessionID: claims.sessionID, refresh: kept, now: now,
                            refreshExpiresIn: max(0, successorExpiresAt - now), settings: settings)
                    case .rotated(let user):
                        event(.tokenRefreshed, "Tokens refreshed", context.peer, userID: user.id, email: user.email)
                        return tokenPair(
                            user: user, sessionID: claims.sessionID, refresh: next, now: now,
                            refreshExpiresIn: settings.refreshTTL, settings: settings)
                    }
                }
            }
        }
    }

    /// The answer of a refresh: a new access token and the refresh token.
    private func tokenPair(
        user: UserSnapshot, sessionID: String, refresh: String, now: Int64, refreshExpiresIn: Int64,
        settings: Settings
    ) -> JSONValue {
        .object([
            "access_token": .string(signAccess(user: user, sessionID: sessionID, now: now, settings: settings)),
            "refresh_token": .string(refresh), "token_type": .string("Bearer"),
            "expires_in": .int(settings.accessTTL), "refresh_expires_in": .int(refreshExpiresIn),
        ])
    }

    /// The successor sealed for the store to keep during the grace window;
    /// nil without a window.
    private func sealForGrace(
        _ next: String, sessionID: String, spentHash: [UInt8], settings: Settings, key: KeyEncryptionKey?
    ) throws -> RefreshGrace? {
        guard settings.refreshGrace > 0 else { return nil }
        guard let key else { throw SettingsError("refresh_grace is set without a key-encryption key") }
        let sealed = try AESGCM.seal(
            Array(next.utf8), key: key.bytes,
            associatedData: RefreshGrace.sealingContext(sessionID: sessionID, spentHash: spentHash))
        return RefreshGrace(window: settings.refreshGrace, sealedNext: sealed)
    }

    /// A kept successor, opened; nil if it does not open (another key).
    private func openKept(_ sealed: [UInt8], sessionID: String, spentHash: [UInt8]) -> String? {
        guard let key = sealingKeyNow,
            let bytes = try? AESGCM.open(
                sealed, key: key.bytes,
                associatedData: RefreshGrace.sealingContext(sessionID: sessionID, spentHash: spentHash))
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: auth.logout

    func logout(_ context: CallContext) {
        withRefreshToken(context) { [self] claims, presented in
            store.logout(
                sessionID: claims.sessionID, presented: presented, presentedIssuedAt: claims.issuedAt,
                graceWindow: settings.refreshGrace, now: clock()
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
