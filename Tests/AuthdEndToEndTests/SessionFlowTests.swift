import AuthCore
import Foundation
import Testing

@Suite(.timeLimit(.minutes(5))) struct SessionFlowTests {
    @Test func loginVerifyRefreshLogout() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("Alice@Example.com", role: "editor")
            let login = try rpc.result(
                "auth.login", ["email": .string(" alice@example.COM "), "password": .string(defaultPassword)])
            #expect(login.string("token_type") == "Bearer")
            #expect(login["expires_in"] == .int(900))
            #expect(login["refresh_expires_in"] == .int(604_800))
            #expect(login["user"]?.objectValue?.string("email") == "alice@example.com")
            #expect(login["user"]?.objectValue?.string("role") == "editor")
            let access = try #require(login.string("access_token"))
            let refresh = try #require(login.string("refresh_token"))
            #expect(access != refresh)

            let verified = try rpc.verify("Bearer " + access, role: "editor")
            let result = try #require(verified["result"]?.objectValue)
            #expect(result["user"]?.objectValue?.string("email") == "alice@example.com")
            let claims = try #require(result["claims"]?.objectValue)
            for claim in ["iss", "aud", "sub", "email", "role", "sid", "jti", "iat", "exp"] {
                #expect(claims[claim] != nil, "claim \(claim)")
            }
            #expect(result["expires_at"] == claims["exp"])

            let me = try rpc.result("user.me", ["access_token": .string(access)])
            #expect(me.string("email") == "alice@example.com")
            #expect(me["active"] == .bool(true))
            #expect(me["password_hash"] == nil)
            #expect(me["created_at"]?.int64Value != nil)

            let refreshed = try rpc.result("auth.refresh", ["refresh_token": .string(refresh)])
            let newAccess = try #require(refreshed.string("access_token"))
            let newRefresh = try #require(refreshed.string("refresh_token"))
            #expect(newRefresh != refresh)
            #expect(refreshed["expires_in"] == .int(900))
            #expect(try rpc.verify(newAccess)["result"] != nil)

            #expect(try rpc.result("auth.logout", ["refresh_token": .string(newRefresh)])["revoked"] == .bool(true))
            #expect(try rpc.verify(newAccess).errorReason == "session_revoked")
            #expect(try rpc.verify(access).errorReason == "session_revoked")
            #expect(
                try rpc.call("auth.refresh", ["refresh_token": .string(newRefresh)]).errorReason == "refresh_invalid")
            #expect(daemon.events(named: "authn_token_revoked").count == 1)
        }
    }

    @Test func refreshReuseRevokesTheWholeSession() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("bob@example.com")
            let tokens = try rpc.login("bob@example.com")
            let rotated = try rpc.result("auth.refresh", ["refresh_token": .string(tokens.refresh)])
            let second = try #require(rotated.string("refresh_token"))
            let secondAccess = try #require(rotated.string("access_token"))

            let reuse = try rpc.call("auth.refresh", ["refresh_token": .string(tokens.refresh)])
            #expect(reuse.errorCode == 403)
            #expect(reuse.errorReason == "refresh_reused")
            // The legitimate holder's newer tokens die with the session.
            #expect(try rpc.call("auth.refresh", ["refresh_token": .string(second)]).errorReason == "refresh_invalid")
            #expect(try rpc.verify(secondAccess).errorReason == "session_revoked")
            let events = daemon.events(named: "authn_token_reuse")
            #expect(events.count == 1)
            #expect(events.first?["AUTHD_USER_ID"] == .string(tokens.userID))
        }
    }

    @Test func logoutAllRevokesEverySession() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("carol@example.com")
            let one = try rpc.login("carol@example.com")
            let two = try rpc.login("carol@example.com")
            let three = try rpc.login("carol@example.com")
            let result = try rpc.result("auth.logout_all", ["access_token": .string(one.access)])
            #expect(result["revoked"] == .int(3))
            for tokens in [one, two, three] {
                #expect(try rpc.verify(tokens.access).errorReason == "session_revoked")
                #expect(
                    try rpc.call("auth.refresh", ["refresh_token": .string(tokens.refresh)]).errorReason
                        == "refresh_invalid")
            }
        }
    }

    @Test func changePasswordKeepsThisSessionAndRevokesTheOthers() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("dave@example.com")
            let mine = try rpc.login("dave@example.com")
            let other = try rpc.login("dave@example.com")
            let wrong = try rpc.call(
                "user.change_password",
                [
                    "access_token": .string(mine.access), "current_password": .string("not it at all"),
                    "new_password": .string("a brand new secret"),
                ])
            #expect(wrong.errorReason == "invalid_credentials")
            let weak = try rpc.call(
                "user.change_password",
                [
                    "access_token": .string(mine.access), "current_password": .string(defaultPassword),
                    "new_password": .string("short"),
                ])
            #expect(weak.errorReason == "weak_password")
            #expect(weak.errorField == "new_password")
            let changed = try rpc.result(
                "user.change_password",
                [
                    "access_token": .string(mine.access), "current_password": .string(defaultPassword),
                    "new_password": .string("a brand new secret"),
                ])
            #expect(changed["changed"] == .bool(true))
            #expect(try rpc.verify(mine.access)["result"] != nil)
            #expect(try rpc.verify(other.access).errorReason == "session_revoked")
            #expect(
                try rpc.call(
                    "auth.login", ["email": .string("dave@example.com"), "password": .string(defaultPassword)]
                ).errorReason == "invalid_credentials")
            _ = try rpc.login("dave@example.com", password: "a brand new secret")
        }
    }

    @Test func wrongCurrentPasswordsAreThrottledLikeLogins() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("guess@example.com")
            let tokens = try rpc.login("guess@example.com")
            var reasons: [String] = []
            for index in 0..<6 {
                let response = try rpc.call(
                    "user.change_password",
                    [
                        "access_token": .string(tokens.access), "current_password": .string("guess number \(index)"),
                        "new_password": .string("a brand new secret"),
                    ])
                reasons.append(response.errorReason ?? "ok")
            }
            #expect(reasons == Array(repeating: "invalid_credentials", count: 5) + ["rate_limited"])
            let login = try rpc.call(
                "auth.login", ["email": .string("guess@example.com"), "password": .string(defaultPassword)])
            #expect(login.errorReason == "rate_limited")
        }
    }

    @Test func requiredRoleIsAnExactMatchOnTheCurrentRole() throws {
        try withDaemon { _, rpc in
            let id = try rpc.createUser("erin@example.com", role: "user")
            let tokens = try rpc.login("erin@example.com")
            #expect(try rpc.verify(tokens.access, role: "admin").errorReason == "forbidden")
            _ = try rpc.result("user.update", ["id": .string(id), "role": .string("admin")])
            // The token still says "user"; the stored role now says admin.
            let verified = try rpc.verify(tokens.access, role: "admin")
            #expect(verified["result"]?.objectValue?["user"]?.objectValue?.string("role") == "admin")
        }
    }

    @Test func deactivationAndDeletionTakeEffectOnTheNextCall() throws {
        try withDaemon { _, rpc in
            let id = try rpc.createUser("frank@example.com")
            let tokens = try rpc.login("frank@example.com")
            _ = try rpc.result("user.update", ["id": .string(id), "active": .bool(false)])
            #expect(try rpc.verify(tokens.access).errorReason == "account_inactive")
            #expect(
                try rpc.call(
                    "auth.login", ["email": .string("frank@example.com"), "password": .string(defaultPassword)]
                ).errorReason == "invalid_credentials")
            _ = try rpc.result("user.update", ["id": .string(id), "active": .bool(true)])
            // Reactivation does not bring old sessions back.
            #expect(try rpc.verify(tokens.access).errorReason == "session_revoked")
            let fresh = try rpc.login("frank@example.com")
            _ = try rpc.result("user.delete", ["id": .string(id)])
            #expect(try rpc.verify(fresh.access).errorReason == "user_not_found")
            #expect(
                try rpc.call("auth.refresh", ["refresh_token": .string(fresh.refresh)]).errorReason == "refresh_invalid"
            )
        }
    }

    @Test func expiredAccessTokensAreRefused() throws {
        try withDaemon(flags: ["access-ttl": "1", "clock-leeway": "0"]) { _, rpc in
            try rpc.createUser("gina@example.com")
            let tokens = try rpc.login("gina@example.com")
            Thread.sleep(forTimeInterval: 2.1)
            let expired = try rpc.verify(tokens.access)
            #expect(expired.errorCode == 401)
            #expect(expired.errorReason == "token_expired")
            // The refresh token still gives a new access token.
            #expect(try rpc.result("auth.refresh", ["refresh_token": .string(tokens.refresh)])["access_token"] != nil)
        }
    }

    @Test func publicInfoMethods() throws {
        try withDaemon { _, rpc in
            let health = try rpc.result("sys.health")
            #expect(health.string("status") == "ok")
            #expect(health.string("version") != nil)
            #expect(health["uptime_s"]?.int64Value != nil)
            #expect(try rpc.result("keys.jwks")["keys"] == .array([]))
        }
    }
}
