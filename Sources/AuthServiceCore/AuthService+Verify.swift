import AuthCore
import AuthCrypto

/// `token.verify` (answered inline from the live view) and `user.me`.
extension AuthService {
    // MARK: token.verify

    /// Inline on the event loop: one HMAC and one in-memory lookup.
    func verify(_ context: CallContext) {
        do throws(AuthError) {
            let request = try VerifyRequest(params: context.params)
            let requiredRole = request.requiredRole
            let authenticated = try authenticate(request.token, peer: context.peer)
            if let requiredRole, authenticated.user.role != requiredRole {
                event(
                    .authzFail, "Token lacks the required role", context.peer, userID: authenticated.user.id,
                    reason: "required_role")
                throw AuthError.forbidden
            }
            context.respond(
                .success(
                    .object(
                        JSONObject([
                            JSONMember(key: "user", value: authenticated.user.briefJSON),
                            JSONMember(key: "claims", value: .object(authenticated.claimsObject)),
                            JSONMember(key: "expires_at", value: .int(authenticated.claims.expiresAt)),
                        ]))))
        } catch {
            context.fail(error)
        }
    }

    // MARK: user.me

    /// The token is checked inline; the user is read from the store, for
    /// what the live view does not hold (`mfa_enabled`).
    func me(_ context: CallContext) {
        let authenticated: Authenticated
        do throws(AuthError) {
            authenticated = try authenticate(
                try AccessTokenRequest(params: context.params).accessToken, peer: context.peer)
        } catch {
            return context.fail(error)
        }
        onStoreQueue(context) { [self] in
            store.user(id: authenticated.user.id) { result in
                context.answer(result) { user throws(AuthError) in
                    guard let user else { throw .userNotFound }
                    return user.publicJSON
                }
            }
        }
    }
}
