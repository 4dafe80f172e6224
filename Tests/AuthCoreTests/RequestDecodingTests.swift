import AuthCore
import Testing

/// Every method's params, decoded without a daemon: what is accepted, and
/// the error (and field) for the first thing wrong.
@Suite struct RequestDecodingTests {
    typealias Decode = @Sendable (JSONObject) throws -> Void

    static let refusals: [(String, Decode, JSONObject, AuthError)] = [
        (
            "login without email", { _ = try LoginRequest(params: $0) }, ["password": .string("p")],
            .invalidParams(field: "email")
        ),
        (
            "login with a number as password", { _ = try LoginRequest(params: $0) },
            ["email": .string("a@b.c"), "password": .int(5)], .invalidParams(field: "password")
        ),
        (
            "login with NUL", { _ = try LoginRequest(params: $0) },
            ["email": .string("a@b.c"), "password": .string("a\u{0}b")],
            .invalidParams(field: "password", "Password must not contain NUL")
        ),
        (
            "login with a 257-byte client", { _ = try LoginRequest(params: $0) },
            [
                "email": .string("a@b.c"), "password": .string("p"),
                "client": .string(String(repeating: "c", count: 257)),
            ],
            .invalidParams(field: "client")
        ),
        ("verify with an empty token", { _ = try VerifyRequest(params: $0) }, ["token": .string("")], .noToken),
        (
            "verify with a number as role", { _ = try VerifyRequest(params: $0) },
            ["token": .string("t"), "required_role": .int(1)], .invalidParams(field: "required_role")
        ),
        (
            "refresh without a token", { _ = try RefreshTokenRequest(params: $0) }, [:],
            .invalidParams(field: "refresh_token")
        ),
        (
            "change_password with a weak new one", { _ = try ChangePasswordRequest(params: $0) },
            ["current_password": .string("old one!"), "new_password": .string("short")],
            .weakPassword(field: "new_password")
        ),
        (
            "create with a bad email", { _ = try CreateUserRequest(params: $0) },
            ["email": .string("nope"), "password": .string("long enough")], .invalidEmail()
        ),
        (
            "create with a bad role", { _ = try CreateUserRequest(params: $0) },
            ["email": .string("a@b.c"), "password": .string("long enough"), "role": .string("Admin!")],
            .invalidParams(field: "role")
        ),
        (
            "list with limit 0", { _ = try ListUsersRequest(params: $0) }, ["limit": .int(0)],
            .invalidParams(field: "limit")
        ),
        (
            "list with a forged cursor", { _ = try ListUsersRequest(params: $0) }, ["after": .string("eHl6")],
            .invalidParams(field: "after")
        ),
        (
            "update with an invisible character", { _ = try UpdateUserRequest(params: $0) },
            ["id": .string("1"), "email": .string("a\u{200B}@b.c")], .invalidEmail()
        ),
        (
            "update with a non-numeric id", { _ = try UpdateUserRequest(params: $0) }, ["id": .string("x")],
            .invalidParams(field: "id")
        ),
        ("revoke with nothing", { _ = try RevokeSessionsRequest(params: $0) }, [:], .invalidParams(field: "id")),
        (
            "set_password too long", { _ = try SetPasswordRequest(params: $0) },
            ["id": .int(1), "password": .string(String(repeating: "a", count: 73))],
            .passwordTooLong(field: "password")
        ),
    ]

    @Test(arguments: 0..<refusals.count)
    func eachRefusal(_ index: Int) {
        let (name, decode, params, expected) = Self.refusals[index]
        #expect(throws: expected, "\(name)") { try decode(params) }
    }

    @Test func acceptedParamsAreDecodedAndNormalised() throws {
        let login = try LoginRequest(params: [
            "email": .string(" A@B.c "), "password": .string("pw"), "client": .string("ip"),
        ])
        #expect(login.email == " A@B.c " && login.client == "ip")  // normalised later, for the throttle key too
        let create = try CreateUserRequest(params: [
            "email": .string(" Zo\u{EB}@X.org "), "password": .string("long enough"),
        ])
        #expect(create.email == "zo\u{EB}@x.org" && create.role == "user" && create.active)
        #expect(try GetUserRequest(params: ["id": .string("7")]) == .id(7))
        #expect(try GetUserRequest(params: ["id": .null, "email": .string("nope")]) == .email(nil))
        let page = try ListUsersRequest(params: ["after": .string(UserCursor.encode(41))])
        #expect(page.after == 41 && page.limit == 100)
        #expect(try RevokeSessionsRequest(params: ["id": .string("s1"), "user_id": .int(3)]) == .session("s1"))
        #expect(try RevokeSessionsRequest(params: ["user_id": .int(3)]) == .user(3))
        #expect(try VerifyRequest(params: ["token": .string("Bearer abc")]).token == "abc")
    }
}
