import AuthCore
import AuthCrypto
import Foundation
import Testing

@testable import AuthServiceCore

/// Every method's rules and error order, in process: the service on each
/// store (the fake, the fake completing later on another thread, SQLite),
/// with inline queues and a test clock. The daemon's socket, signals and
/// processes are the end-to-end tests' part.
@Suite struct ServiceRulesTests {
    @Test(arguments: StoreKind.allCases) func authorisationComesBeforeAnyParamIsLookedAt(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        for method in RPCMethod.allCases where method.requiresAdmin {
            let request = RPCRequest(
                id: .int(1), method: method.rawValue, params: [:], paramsAreObject: false)
            let answer = harness.call(request, as: ServiceHarness.stranger)
            #expect(answer.reason == "forbidden", "\(method)")
            #expect(answer.code == 403, "\(method)")
            // An admin peer with the same bad params gets the params error.
            #expect(harness.call(request).code == -32602, "\(method)")
        }
        #expect(
            harness.sinks.reasons(of: .authzFail).filter { $0 == "forbidden" }.count
                == RPCMethod.allCases.filter(\.requiresAdmin).count)
    }

    @Test(arguments: StoreKind.allCases) func loginRefusalsAreAlikeAndLoggedWithTheirCause(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        try harness.createUser("alice@example.com")
        let sleepy = try harness.createUser("sleepy@example.com")
        _ = try harness.result("user.update", ["id": .string(String(sleepy)), "active": .bool(false)])
        let attempts: [(String, String)] = [
            ("nobody@example.com", ServiceHarness.password),
            ("alice@example.com", "wrong password"),
            ("alice@example.com", String(repeating: "x", count: 73)),
            ("sleepy@example.com", ServiceHarness.password),
            ("not an email", ServiceHarness.password),
        ]
        var answers: [String] = []
        for (email, password) in attempts {
            let answer = harness.call(
                "auth.login", ["email": .string(email), "password": .string(password), "client": .string(email)])
            answers.append("\(answer)")
            #expect(answer.reason == "invalid_credentials")
            #expect(answer.code == 401)
        }
        #expect(Set(answers).count == 1)
        #expect(
            Set(harness.sinks.reasons(of: .loginFail)) == [
                "unknown_user", "wrong_password", "password_too_long", "account_inactive", "invalid_email",
            ])
    }

    @Test(arguments: StoreKind.allCases) func paramErrorsNameTheField(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        let password = JSONValue.string(ServiceHarness.password)
        let cases: [(String, JSONObject, String, String)] = [
            ("auth.login", ["password": .string("x")], "invalid_params", "email"),
            ("auth.login", ["email": .number("5"), "password": .string("x")], "invalid_params", "email"),
            ("auth.login", ["email": .string("a@b.c")], "invalid_params", "password"),
            (
                "auth.login", ["email": .string("a@b.c"), "password": .string("abc\u{0}defghi")], "invalid_params",
                "password"
            ),
            (
                "auth.login", ["email": .string("a@b.c"), "password": .string("x"), "client": .bool(true)],
                "invalid_params", "client"
            ),
            ("auth.refresh", [:], "invalid_params", "refresh_token"),
            ("auth.logout", ["refresh_token": .null], "invalid_params", "refresh_token"),
            ("auth.logout_all", ["access_token": .array([])], "invalid_params", "access_token"),
            ("token.verify", [:], "invalid_params", "token"),
            (
                "token.verify", ["token": .string("x"), "required_role": .number("1")], "invalid_params",
                "required_role"
            ),
            ("user.me", ["access_token": .number("1")], "invalid_params", "access_token"),
            ("user.create", ["email": .string("bad"), "password": password], "invalid_email", "email"),
            (
                "user.create", ["email": .string("n@example.com"), "password": .string("short")], "weak_password",
                "password"
            ),
            (
                "user.create",
                ["email": .string("n@example.com"), "password": .string(String(repeating: "€", count: 30))],
                "password_too_long", "password"
            ),
            (
                "user.create", ["email": .string("n@example.com"), "password": .string("abcdefgh\u{0}")],
                "invalid_params", "password"
            ),
            (
                "user.create", ["email": .string("n@example.com"), "password": password, "role": .string("Bad Role")],
                "invalid_params", "role"
            ),
            (
                "user.create", ["email": .string("n@example.com"), "password": password, "active": .string("yes")],
                "invalid_params", "active"
            ),
            ("user.get", ["id": .string("abc")], "invalid_params", "id"),
            ("user.list", ["limit": .number("0")], "invalid_params", "limit"),
            ("user.list", ["limit": .number("1001")], "invalid_params", "limit"),
            ("user.list", ["after": .string("garbage!")], "invalid_params", "after"),
            ("user.update", [:], "invalid_params", "id"),
            ("user.update", ["id": .number("1"), "email": .string("nope")], "invalid_email", "email"),
            ("user.set_password", ["id": .number("1"), "password": .string("short")], "weak_password", "password"),
            ("session.list", [:], "invalid_params", "user_id"),
            ("session.revoke", [:], "invalid_params", "id"),
        ]
        for (method, params, reason, field) in cases {
            let answer = harness.call(method, params)
            #expect(answer.code == -32602, "\(method) \(params)")
            #expect(answer.reason == reason, "\(method) \(params)")
            if case .failure(let error) = answer { #expect(error.field == field, "\(method) \(params)") }
        }
        // Nothing was created by any of them.
        #expect(harness.store.view.counts.users == 0)
    }

    @Test(arguments: StoreKind.allCases) func adminNotFoundAndConflicts(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        let alice = try harness.createUser("alice@example.com")
        try harness.createUser("bob@example.com")
        let taken = harness.call(
            "user.create", ["email": .string("ALICE@example.com"), "password": .string(ServiceHarness.password)])
        #expect(taken.code == 409)
        #expect(taken.reason == "email_taken")
        let renamed = harness.call("user.update", ["id": .string(String(alice)), "email": .string("bob@example.com")])
        #expect(renamed.reason == "email_taken")
        for (method, params) in [
            ("user.get", ["id": JSONValue.number("999")]), ("user.get", ["email": .string("zz@example.com")]),
            ("user.update", ["id": .number("999"), "role": .string("x")]), ("user.delete", ["id": .number("999")]),
            ("user.set_password", ["id": .number("999"), "password": .string(ServiceHarness.password)]),
            ("session.list", ["user_id": .number("999")]), ("session.revoke", ["id": .string("nope")]),
            ("session.revoke", ["user_id": .number("999")]),
        ] as [(String, JSONObject)] {
            let answer = harness.call(method, params)
            #expect(answer.code == 404, "\(method)")
            #expect(answer.reason == "not_found", "\(method)")
        }
    }

    @Test(arguments: StoreKind.allCases) func aSessionLivesUntilItsRefreshTokenIsReused(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        try harness.createUser("alice@example.com", role: "editor")
        let first = try harness.login("alice@example.com")
        let verified = try harness.result(
            "token.verify", ["token": .string(first.access), "required_role": .string("editor")])
        #expect(verified["user"]?.objectValue?["email"] == .string("alice@example.com"))
        #expect(
            harness.call("token.verify", ["token": .string(first.access), "required_role": .string("admin")]).reason
                == "forbidden")
        harness.clock.advance(1)
        let next = try harness.result("auth.refresh", ["refresh_token": .string(first.refresh)])
        let secondRefresh = try #require(next["refresh_token"]?.stringValue)
        #expect(secondRefresh != first.refresh)
        // The spent token again: reuse, the session ends, its access token too.
        #expect(harness.call("auth.refresh", ["refresh_token": .string(first.refresh)]).reason == "refresh_reused")
        #expect(harness.call("token.verify", ["token": .string(first.access)]).reason == "session_revoked")
        #expect(harness.call("auth.refresh", ["refresh_token": .string(secondRefresh)]).reason == "refresh_invalid")
        #expect(harness.sinks.reasons(of: .tokenReuse) == ["refresh_reused"])
    }

    @Test(arguments: StoreKind.allCases) func logoutAllAndPasswordChangesEndTheRightSessions(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        try harness.createUser("alice@example.com")
        let phone = try harness.login("alice@example.com")
        let laptop = try harness.login("alice@example.com")
        let changed = harness.call(
            "user.change_password",
            [
                "access_token": .string(laptop.access), "current_password": .string(ServiceHarness.password),
                "new_password": .string("a new long password"),
            ])
        #expect(changed.object?["changed"] == .bool(true))
        #expect(harness.call("token.verify", ["token": .string(phone.access)]).reason == "session_revoked")
        #expect(harness.call("token.verify", ["token": .string(laptop.access)]).object != nil)
        #expect(
            harness.call(
                "auth.login", ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)]
            ).reason == "invalid_credentials")
        let again = try harness.login("alice@example.com", password: "a new long password")
        let all = try harness.result("auth.logout_all", ["access_token": .string(again.access)])
        #expect(all["revoked"] == .int(2))
        #expect(harness.store.view.counts.sessions == 0)
    }

    @Test(arguments: StoreKind.allCases) func aFullHashQueueIsBusyAndGivesBackTheThrottlePlace(_ kind: StoreKind) throws
    {
        let harness = try ServiceHarness(kind) { $0.loginMaxFailures = 1 }
        try harness.createUser("alice@example.com")
        harness.hashQueue.refuseAll(true)
        let params: JSONObject = ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)]
        for _ in 0..<3 {
            let answer = harness.call("auth.login", params)
            #expect(answer.reason == "busy")
            #expect(answer.code == 503)
        }
        harness.hashQueue.refuseAll(false)
        // Refused jobs never counted as attempts: the login goes through.
        #expect(harness.call("auth.login", params).object?["access_token"] != nil)
    }

    @Test(arguments: StoreKind.allCases) func whileStoppingOnlyChecksAreServed(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        try harness.createUser("alice@example.com")
        let tokens = try harness.login("alice@example.com")
        harness.service.beginShutdown()
        for method in RPCMethod.allCases {
            let answer = harness.call(
                method.rawValue, ["token": .string(tokens.access), "access_token": .string(tokens.access)])
            if method.isServedWhileStopping {
                #expect(answer.reason != "shutting_down", "\(method)")
            } else {
                #expect(answer.reason == "shutting_down", "\(method)")
            }
        }
    }

    @Test func aStoreFailureIsAnInternalErrorWhoseCauseStaysInTheLog() throws {
        let harness = try ServiceHarness(.memory)
        try harness.createUser("alice@example.com")
        let tokens = try harness.login("alice@example.com")
        (harness.store as! InMemoryCredentialStore).failWrites("disk on fire")
        let answer = harness.call("auth.logout_all", ["access_token": .string(tokens.access)])
        #expect(answer.reason == "internal_error")
        #expect(answer.code == -32603)
        #expect(!"\(RPCResponse.failure(id: .int(1), error: answer.failure!))".contains("disk on fire"))
        #expect(harness.sinks.logLines.contains { $0.contains("disk on fire") })
        // The daemon keeps serving: checks still answer from the view.
        #expect(harness.call("token.verify", ["token": .string(tokens.access)]).object != nil)
    }

    @Test(arguments: StoreKind.allCases) func rotatingKeysKeepsOldTokensValid(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        try harness.createUser("alice@example.com")
        let before = try harness.login("alice@example.com")
        let rotated = try harness.result("keys.rotate")
        #expect(rotated["kid"]?.stringValue != nil)
        #expect(harness.call("token.verify", ["token": .string(before.access)]).object != nil)
        let after = try harness.login("alice@example.com")
        #expect(harness.call("token.verify", ["token": .string(after.access)]).object != nil)
    }

    /// A stored hash logs in whichever scheme made it, and a login moves it
    /// to the configured scheme (compare-and-swap): an account hashed with
    /// argon2id moves to bcrypt; a wrong password moves nothing.
    @Test(arguments: StoreKind.allCases) func aHashInAnotherSchemeLogsInAndIsReplaced(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        let id = try harness.createUser("alice@example.com")
        let stored = { try StoreConformanceTests.value { harness.store.user(id: id, $0) }!.passwordHash }
        let argon2 = try PasswordHashing(
            scheme: .argon2id, argon2: .init(memoryKiB: 64, iterations: 1, parallelism: 1)
        ).hash(Array(ServiceHarness.password.utf8))
        let bcrypt = try stored()
        try StoreConformanceTests.value { harness.store.upgradePasswordHash(userID: id, from: bcrypt, to: argon2, $0) }
        #expect(try stored() == argon2)

        #expect(
            harness.call("auth.login", ["email": .string("alice@example.com"), "password": .string("wrong password")])
                .reason
                == "invalid_credentials")
        #expect(try stored() == argon2)
        _ = try harness.login("alice@example.com")
        // The replacement runs after the answer, on the login's worker.
        var replaced = try stored()
        for _ in 0..<500 where replaced == argon2 {
            Thread.sleep(forTimeInterval: 0.01)
            replaced = try stored()
        }
        #expect(PasswordHashing.scheme(of: replaced) == .bcrypt)
        #expect(Bcrypt.cost(of: replaced) == harness.service.settings.bcryptCost)
        _ = try harness.login("alice@example.com")
        #expect(try stored() == replaced)
    }

    /// With argon2id configured: new hashes are argon2id, a bcrypt-hashed
    /// account logs in and moves to argon2id, and a password is refused as
    /// too long at its scheme's limit, 72 bytes for bcrypt, 1024 for argon2id
    /// (at login, over the stored hash's limit it is simply wrong).
    @Test(arguments: StoreKind.allCases) func argon2idConfiguredHashesNewPasswordsAndMovesOldOnes(_ kind: StoreKind)
        throws
    {
        let bcryptHarness = try ServiceHarness(kind)
        let oldID = try bcryptHarness.createUser("old@example.com")
        let stored = { (harness: ServiceHarness, id: Int64) in
            try StoreConformanceTests.value { harness.store.user(id: id, $0) }!.passwordHash
        }
        let bcryptHash = try stored(bcryptHarness, oldID)
        #expect(PasswordHashing.scheme(of: bcryptHash) == .bcrypt)
        let long = String(repeating: "p", count: 100)
        #expect(
            bcryptHarness.call(
                "user.create", ["email": .string("long@example.com"), "password": .string(long)]
            ).reason == "password_too_long")

        let harness = try ServiceHarness(kind) {
            $0.passwordScheme = .argon2id
            $0.argon2MemoryKiB = 8_192
            $0.argon2Iterations = 1
        }
        let newID = try harness.createUser("new@example.com")
        let newHash = try stored(harness, newID)
        #expect(newHash.hasPrefix("$argon2id$v=19$m=8192,t=1,p=1$"))
        _ = try harness.login("new@example.com")
        let longID = try harness.createUser("long@example.com", password: long)
        #expect(try stored(harness, longID).hasPrefix("$argon2id$"))
        _ = try harness.login("long@example.com", password: long)
        #expect(
            harness.call(
                "user.create",
                ["email": .string("longer@example.com"), "password": .string(String(repeating: "p", count: 1025))]
            ).reason == "password_too_long")

        // A bcrypt hash in this store (as an older configuration left it).
        let migratingID = try harness.createUser("migrating@example.com")
        let argon2Hash = try stored(harness, migratingID)
        try StoreConformanceTests.value {
            harness.store.upgradePasswordHash(userID: migratingID, from: argon2Hash, to: bcryptHash, $0)
        }
        // Over bcrypt's 72 bytes: wrong for that account, and nothing moves.
        #expect(
            harness.call("auth.login", ["email": .string("migrating@example.com"), "password": .string(long)]).reason
                == "invalid_credentials")
        #expect(harness.sinks.reasons(of: .loginFail).last == "password_too_long")
        #expect(try stored(harness, migratingID) == bcryptHash)
        _ = try harness.login("migrating@example.com")
        var moved = try stored(harness, migratingID)
        for _ in 0..<500 where moved == bcryptHash {
            Thread.sleep(forTimeInterval: 0.01)
            moved = try stored(harness, migratingID)
        }
        #expect(moved.hasPrefix("$argon2id$v=19$m=8192,t=1,p=1$"))

        // Back to bcrypt: an account whose password is over 72 bytes keeps
        // its argon2id hash (bcrypt would cut the password) and logs in.
        let backHarness = try ServiceHarness(kind)
        let longAgain = try backHarness.createUser("long@example.com", password: "short password")
        let shortHash = try stored(backHarness, longAgain)
        let longHash = try stored(harness, longID)
        try StoreConformanceTests.value {
            backHarness.store.upgradePasswordHash(userID: longAgain, from: shortHash, to: longHash, $0)
        }
        _ = try backHarness.login("long@example.com", password: long)
        Thread.sleep(forTimeInterval: 0.05)
        _ = try backHarness.login("long@example.com", password: long)
        #expect(try stored(backHarness, longAgain).hasPrefix("$argon2id$"))
    }

    /// The schemes a login pads with follow what the store holds: counted
    /// on demand, and every scheme until the first count.
    @Test(arguments: StoreKind.allCases) func loginsPadWithTheSchemesStoredHashesAreIn(_ kind: StoreKind) throws {
        let harness = try ServiceHarness(kind)
        #expect(harness.service.loginHashing.1 == nil)
        let id = try harness.createUser("alice@example.com")
        let count = {
            let done = DispatchSemaphore(value: 0)
            harness.service.countStoredPasswordSchemes { done.signal() }
            done.wait()
            return harness.service.loginHashing.1
        }
        #expect(count() == [.bcrypt])
        let bcrypt = try StoreConformanceTests.value { harness.store.user(id: id, $0) }!.passwordHash
        let argon2 = try PasswordHashing(scheme: .argon2id, argon2: .init(memoryKiB: 64, iterations: 1, parallelism: 1))
            .hash(Array(ServiceHarness.password.utf8))
        try harness.createUser("bob@example.com")
        try StoreConformanceTests.value { harness.store.upgradePasswordHash(userID: id, from: bcrypt, to: argon2, $0) }
        #expect(count() == [.bcrypt, .argon2id])

        // A reload keeps padding with the scheme configured until then: its
        // hashes may be written before the next count.
        let argon2Harness = try ServiceHarness(kind) {
            $0.passwordScheme = .argon2id
            $0.argon2MemoryKiB = 8_192
            $0.argon2Iterations = 1
        }
        try argon2Harness.createUser("carol@example.com")
        let done = DispatchSemaphore(value: 0)
        argon2Harness.service.countStoredPasswordSchemes { done.signal() }
        done.wait()
        #expect(argon2Harness.service.loginHashing.1 == [.argon2id])
        var toBcrypt = argon2Harness.service.settings
        toBcrypt.passwordScheme = .bcrypt
        try argon2Harness.service.apply(settings: toBcrypt, adminGIDs: [])
        try argon2Harness.createUser("dave@example.com")
        var back = toBcrypt
        back.passwordScheme = .argon2id
        try argon2Harness.service.apply(settings: back, adminGIDs: [])
        #expect(argon2Harness.service.loginHashing.1 == [.argon2id, .bcrypt])

        // Who pads with what: every scheme in play but the one checked.
        #expect(LoginHashing.padding(checked: .bcrypt, configured: .bcrypt, stored: [.bcrypt]) == [])
        #expect(
            LoginHashing.padding(checked: .bcrypt, configured: .bcrypt, stored: [.bcrypt, .argon2id]) == [.argon2id])
        #expect(
            LoginHashing.padding(checked: .argon2id, configured: .bcrypt, stored: [.bcrypt, .argon2id]) == [.bcrypt])
        #expect(LoginHashing.padding(checked: .bcrypt, configured: .argon2id, stored: [.bcrypt]) == [.argon2id])
        #expect(LoginHashing.padding(checked: .argon2id, configured: .argon2id, stored: [.argon2id]) == [])
        #expect(LoginHashing.padding(checked: .bcrypt, configured: .bcrypt, stored: nil) == [.argon2id])
    }

    /// A token served from the verified-token cache is still checked for
    /// everything that can change after its first check: the time, the
    /// issuer and audience (a reload), and its exact bytes (a forgery that
    /// keeps the signature, and with it the cache's hash, is refused).
    @Test func aCachedTokenCheckRepeatsWhatCanChange() throws {
        let harness = try ServiceHarness(.memory)
        try harness.createUser("alice@example.com", role: "editor")
        let tokens = try harness.login("alice@example.com")
        let verify = { (token: String) in harness.call("token.verify", ["token": .string(token)]) }

        let first = try #require(verify(tokens.access).object)
        let second = try #require(verify(tokens.access).object)
        #expect(first == second)
        // The cached claims are written from their made encoding: the same
        // bytes as the token's payload parsed and written again.
        let payload = try #require(tokens.access.split(separator: ".").dropFirst().first)
        let signedClaims = try JSONParser.parse(Array(try #require(Base64URL.decode(String(payload)))))
        #expect(second["claims"] == signedClaims)
        let written = RPCResponse.success(id: .int(1), result: .object(second))
        #expect(try JSONParser.parse(written).objectValue?["result"] == .object(second))
        #expect(second["user"]?.objectValue?["role"] == .string("editor"))

        // One payload byte changed, signature (and so the cache's hash) kept.
        var forged = Array(tokens.access.utf8)
        let dot = try #require(forged.firstIndex(of: UInt8(ascii: ".")))
        forged[dot + 5] = forged[dot + 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(verify(String(decoding: forged, as: UTF8.self)).reason == "token_invalid")
        #expect(verify(tokens.access).object != nil)

        // Another issuer after a reload: the entry checked under the old
        // one is not used, whether or not the cache was emptied.
        var reloaded = harness.service.settings
        reloaded.issuer = "another-issuer"
        try harness.service.apply(settings: reloaded, adminGIDs: [])
        #expect(verify(tokens.access).reason == "token_invalid")
        reloaded.issuer = "authd"
        try harness.service.apply(settings: reloaded, adminGIDs: [])
        #expect(verify(tokens.access).object != nil)

        // Expiry is checked on every call, cached or not.
        harness.clock.advance(reloaded.accessTTL + reloaded.clockLeeway)
        #expect(verify(tokens.access).reason == "token_expired")
    }

    /// A view the store cannot vouch for is not trusted: past
    /// `max_staleness`, or at once when the store knows a committed write of
    /// its own is not in the view yet (its feed timed out); `sys.health`
    /// reports both as degraded, the second without an age.
    @Test func tokenChecksFailClosedWhileTheViewIsStaleOrBehindALocalWrite() throws {
        let harness = try ServiceHarness(.memory) { $0.maxStaleness = 30 }
        let store = try #require(harness.store as? InMemoryCredentialStore)
        try harness.createUser("alice@example.com")
        let tokens = try harness.login("alice@example.com")
        let verify = { harness.call("token.verify", ["token": .string(tokens.access)]) }

        store.reportSecondsSinceSync(0.2)
        #expect(verify().object?["user"] != nil)
        #expect(try harness.result("sys.health")["status"] == .string("ok"))

        store.reportSecondsSinceSync(29)
        #expect(verify().object?["user"] != nil)
        let stale = try harness.result("sys.health")
        #expect(stale["status"] == .string("degraded"))
        #expect(stale["last_sync_age_s"] == .int(29))

        store.reportSecondsSinceSync(31)
        #expect(verify().reason == "unavailable")

        store.reportSecondsSinceSync(.infinity)
        #expect(verify().reason == "unavailable")
        let behind = try harness.result("sys.health")
        #expect(behind["status"] == .string("degraded"))
        #expect(behind["last_sync_age_s"] == nil)
        #expect(behind["max_staleness_s"] == .int(30))

        store.reportSecondsSinceSync(nil)
        #expect(verify().object?["user"] != nil)
    }
}
