import AuthCore
import AuthCrypto

/// `token.verify` and `user.me`: answered inline from the live view.
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

    func me(_ context: CallContext) {
        do throws(AuthError) {
            let authenticated = try authenticate(
                try AccessTokenRequest(params: context.params).accessToken, peer: context.peer)
            context.respond(.success(authenticated.user.publicJSON))
        } catch {
            context.fail(error)
        }
    }
}
