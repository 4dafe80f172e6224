import AuthCore
import AuthCrypto
import Foundation
import Testing

extension JSONValue {
    /// The strings of an array (nil when not an array).
    var strings: [String]? {
        guard case .array(let values) = self else { return nil }
        return values.compactMap(\.stringValue)
    }
}

/// The TOTP second factor against the real daemon: enrolment, login in two
/// steps, codes and recovery codes that work once, the failure count a
/// right password cannot clear, and the admin's reset.
@Suite(.timeLimit(.minutes(5))) struct SecondFactorTests {
    typealias Store = RefreshGraceTests.Store

    /// An enrolled and confirmed second factor: its generator, the step
    /// the confirmation used, and the recovery codes.
    struct Enrolled {
        let totp: TOTP
        let confirmedStep: Int64
        let recoveryCodes: [String]

        /// The code of the step after the confirmation's: accepted (it is
        /// within a step of now) and not yet used.
        var nextCode: String { totp.code(step: confirmedStep + 1) }
    }

    static func enrol(_ rpc: RPCConnection, _ tokens: Tokens) throws -> Enrolled {
        let enrolled = try rpc.result(
            "user.totp.enroll",
            ["access_token": .string(tokens.access), "current_password": .string(defaultPassword)])
        let secret = try #require(enrolled.string("secret"))
        SecretLedger.record(secret)
        let totp = try TOTP(secret: try #require(Base32.decode(secret)))
        let now = Int64(Date().timeIntervalSince1970)
        let step = totp.step(at: now)
        let confirmed = try rpc.result(
            "user.totp.confirm", ["access_token": .string(tokens.access), "code": .string(totp.code(step: step))])
        let codes = try #require(confirmed["recovery_codes"]?.strings)
        for code in codes { SecretLedger.record(code) }
        return Enrolled(totp: totp, confirmedStep: step, recoveryCodes: codes)
    }

    /// `auth.login` with the right password; the `mfa_token` it answers.
    static func firstStep(_ rpc: RPCConnection, _ email: String) throws -> String {
        let answer = try rpc.result("auth.login", ["email": .string(email), "password": .string(defaultPassword)])
        #expect(answer["mfa_required"] == .bool(true))
        #expect(answer["mfa_expires_in"] == .int(300))
        #expect(answer["access_token"] == nil && answer["refresh_token"] == nil)
        let token = try #require(answer.string("mfa_token"))
        SecretLedger.record(token)
        return token
    }

    static func secondStep(_ rpc: RPCConnection, _ token: String, _ code: String) throws -> JSONObject {
        try rpc.call("auth.mfa", ["mfa_token": .string(token), "code": .string(code)])
    }

    @Test(arguments: Store.available) func aLoginWithASecondFactorTakesACodeAndEachCodeWorksOnce(_ store: Store) throws
    {
        try withDaemon(flags: try store.flags([:])) { daemon, rpc in
            let id = try rpc.createUser("two@example.com")
            let tokens = try rpc.login("two@example.com")
            #expect(try rpc.result("user.me", ["access_token": .string(tokens.access)])["mfa_enabled"] == .bool(false))
            let wrong = try rpc.call(
                "user.totp.enroll", ["access_token": .string(tokens.access), "current_password": .string("not it!!")])
            #expect(wrong.errorReason == "invalid_credentials")
            let enrolment = try rpc.result(
                "user.totp.enroll",
                ["access_token": .string(tokens.access), "current_password": .string(defaultPassword)])
            let secret = try #require(enrolment.string("secret"))
            SecretLedger.record(secret)
            let uri = try #require(enrolment.string("uri"))
            #expect(uri.hasPrefix("otpauth://totp/authd:two%40example.com?secret=\(secret)&issuer=authd"))
            #expect(uri.hasSuffix("&algorithm=SHA1&digits=6&period=30"))
            // Not active before it is confirmed.
            #expect(try rpc.login("two@example.com").access.isEmpty == false)
            let totp = try TOTP(secret: try #require(Base32.decode(secret)))
            let step = totp.step(at: Int64(Date().timeIntervalSince1970))
            let badConfirm = try rpc.call(
                "user.totp.confirm",
                ["access_token": .string(tokens.access), "code": .string(totp.code(step: step + 5))])
            #expect(badConfirm.errorReason == "invalid_credentials")
            let confirmed = try rpc.result(
                "user.totp.confirm", ["access_token": .string(tokens.access), "code": .string(totp.code(step: step))])
            let codes = try #require(confirmed["recovery_codes"]?.strings)
            for code in codes { SecretLedger.record(code) }
            #expect(codes.count == 10 && Set(codes).count == 10)
            #expect(codes.allSatisfy { $0.count == 19 && $0.split(separator: "-").count == 4 })
            #expect(try rpc.result("user.me", ["access_token": .string(tokens.access)])["mfa_enabled"] == .bool(true))
            #expect(try rpc.result("user.get", ["id": .string(id)])["mfa_enabled"] == .bool(true))
            let again = try rpc.call(
                "user.totp.enroll",
                ["access_token": .string(tokens.access), "current_password": .string(defaultPassword)])
            #expect(again.errorReason == "forbidden")

            // Login in two steps; the confirmation's code is spent.
            let first = try Self.firstStep(rpc, "two@example.com")
            #expect(try Self.secondStep(rpc, first, totp.code(step: step)).errorReason == "invalid_credentials")
            let opened = try #require(try Self.secondStep(rpc, first, totp.code(step: step + 1))["result"]?.objectValue)
            let access = try #require(opened.string("access_token"))
            #expect(opened["user"]?.objectValue?.string("email") == "two@example.com")
            #expect(try rpc.verify(access)["result"] != nil)
            // The mfa_token is spent; the same code on a new one is spent too.
            #expect(try Self.secondStep(rpc, first, codes[0]).errorReason == "invalid_credentials")
            let second = try Self.firstStep(rpc, "two@example.com")
            #expect(try Self.secondStep(rpc, second, totp.code(step: step + 1)).errorReason == "invalid_credentials")
            // A recovery code, typed in lower case without dashes, once.
            let typed = codes[0].lowercased().replacingOccurrences(of: "-", with: "")
            #expect(try Self.secondStep(rpc, second, typed)["result"]?.objectValue?.string("access_token") != nil)
            let third = try Self.firstStep(rpc, "two@example.com")
            #expect(try Self.secondStep(rpc, third, codes[0]).errorReason == "invalid_credentials")
            #expect(try Self.secondStep(rpc, "not-a-token", codes[1]).errorReason == "invalid_credentials")
            #expect(daemon.events(named: "authn_mfa_success").count >= 3)
            let failures = daemon.events(named: "authn_mfa_fail").compactMap { $0["AUTHD_REASON"]?.stringValue }
            #expect(
                Set(failures).isSuperset(of: ["wrong_code", "wrong_recovery_code", "bad_mfa_token"]), "\(failures)")
        }
    }

    /// Wrong codes count as failed logins, and a right password in between
    /// does not clear the count: four wrong codes, the password again, one
    /// more wrong code, and the account is locked even for a right code.
    @Test func wrongCodesCountAndARightPasswordDoesNotClearThem() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("guess@example.com")
            let enrolled = try Self.enrol(rpc, try rpc.login("guess@example.com"))
            let token = try Self.firstStep(rpc, "guess@example.com")
            let wrongCode = enrolled.totp.code(step: enrolled.confirmedStep + 10)
            for _ in 0..<4 { #expect(try Self.secondStep(rpc, token, wrongCode).errorReason == "invalid_credentials") }
            let again = try Self.firstStep(rpc, "guess@example.com")
            #expect(try Self.secondStep(rpc, again, wrongCode).errorReason == "invalid_credentials")
            let locked = try Self.secondStep(rpc, again, enrolled.nextCode)
            #expect(locked.errorReason == "rate_limited", "\(locked)")
            #expect(
                try rpc.call(
                    "auth.login", ["email": .string("guess@example.com"), "password": .string(defaultPassword)]
                )
                .errorReason == "rate_limited")
        }
    }

    /// Nor does a right password at user.change_password clear it: four
    /// wrong codes, a password change, one more wrong code, and the
    /// account is locked.
    @Test func aPasswordChangeDoesNotClearTheCountOfWrongCodes() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("change@example.com")
            let tokens = try rpc.login("change@example.com")
            let enrolled = try Self.enrol(rpc, tokens)
            let wrongCode = enrolled.totp.code(step: enrolled.confirmedStep + 10)
            func replaceCodes(_ password: String, _ code: String) throws -> JSONObject {
                try rpc.call(
                    "user.totp.recovery_codes",
                    [
                        "access_token": .string(tokens.access), "current_password": .string(password),
                        "code": .string(code),
                    ])
            }
            for _ in 0..<4 {
                #expect(try replaceCodes(defaultPassword, wrongCode).errorReason == "invalid_credentials")
            }
            let changed = try rpc.call(
                "user.change_password",
                [
                    "access_token": .string(tokens.access), "current_password": .string(defaultPassword),
                    "new_password": .string("a brand new password"),
                ])
            #expect(changed["result"] != nil, "\(changed)")
            #expect(try replaceCodes("a brand new password", wrongCode).errorReason == "invalid_credentials")
            #expect(try replaceCodes("a brand new password", enrolled.nextCode).errorReason == "rate_limited")
        }
    }

    /// With SQLite the secrets are sealed under the state directory's key:
    /// a daemon given another key refuses to start (every second factor
    /// would stop opening and lock its user out), and starts with the same.
    @Test func anotherKeyEncryptionKeyIsRefusedOnceSecretsAreSealed() throws {
        let daemon = DaemonProcess()
        defer { daemon.tearDown() }
        try daemon.start()
        let rpc = try daemon.connect()
        try rpc.createUser("sealed@example.com")
        let enrolled = try Self.enrol(rpc, try rpc.login("sealed@example.com"))
        let generated = try String(
            contentsOfFile: daemon.stateDirectory + "/keys/key-encryption-key", encoding: .utf8
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        daemon.stop()
        let (status, output) = try DaemonProcess.runToExit(
            arguments: ["--listen", daemon.directory + "/other.sock", "--state-dir", daemon.stateDirectory],
            environment: ["AUTHD_KEY_ENCRYPTION_KEY": String(repeating: "ab", count: 32)])
        #expect(status != 0 && output.contains("is not the one this state directory's second factors are sealed with"))
        // The same key, given: it starts, and the second factor still works.
        let same = DaemonProcess(environment: ["AUTHD_KEY_ENCRYPTION_KEY": generated], directory: daemon.directory)
        try same.start()
        let token = try Self.firstStep(try same.connect(), "sealed@example.com")
        #expect(try Self.secondStep(try same.connect(), token, enrolled.recoveryCodes[0])["result"] != nil)
        same.stop()
        try daemon.start()
        #expect(try daemon.connect().call("sys.health")["result"] != nil)
    }

    /// A successful second step clears the account's count.
    @Test func aRightCodeClearsTheCount() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("clear@example.com")
            let enrolled = try Self.enrol(rpc, try rpc.login("clear@example.com"))
            let token = try Self.firstStep(rpc, "clear@example.com")
            let wrongCode = enrolled.totp.code(step: enrolled.confirmedStep + 10)
            for _ in 0..<4 { _ = try Self.secondStep(rpc, token, wrongCode) }
            #expect(try Self.secondStep(rpc, token, enrolled.nextCode)["result"] != nil)
            // Four more wrong ones would lock a count that was not cleared.
            let next = try Self.firstStep(rpc, "clear@example.com")
            for _ in 0..<4 { _ = try Self.secondStep(rpc, next, wrongCode) }
            #expect(try Self.secondStep(rpc, next, enrolled.recoveryCodes[0])["result"] != nil)
        }
    }

    /// The mfa_token is bound to the credentials the password was checked
    /// against: a reset since voids it, and no code is spent on it.
    @Test func aPasswordResetVoidsAnOpenMfaToken() throws {
        try withDaemon { daemon, rpc in
            let id = try rpc.createUser("reset@example.com")
            let enrolled = try Self.enrol(rpc, try rpc.login("reset@example.com"))
            let token = try Self.firstStep(rpc, "reset@example.com")
            _ = try rpc.result("user.set_password", ["id": .string(id), "password": .string(defaultPassword)])
            #expect(try Self.secondStep(rpc, token, enrolled.recoveryCodes[0]).errorReason == "invalid_credentials")
            // The recovery code was not spent on the void token.
            let fresh = try Self.firstStep(rpc, "reset@example.com")
            #expect(try Self.secondStep(rpc, fresh, enrolled.recoveryCodes[0])["result"] != nil)
        }
    }

    @Test func recoveryCodesAreReplacedTheFactorDisabledAndResetByAnAdmin() throws {
        try withDaemon { daemon, rpc in
            let id = try rpc.createUser("keep@example.com")
            let tokens = try rpc.login("keep@example.com")
            let enrolled = try Self.enrol(rpc, tokens)
            func change(_ method: String, password: String = defaultPassword, code: String) throws -> JSONObject {
                try rpc.call(
                    method,
                    [
                        "access_token": .string(tokens.access), "current_password": .string(password),
                        "code": .string(code),
                    ])
            }
            #expect(
                try change("user.totp.recovery_codes", password: "wrong pass", code: enrolled.recoveryCodes[0])
                    .errorReason == "invalid_credentials")
            let replaced = try change("user.totp.recovery_codes", code: enrolled.recoveryCodes[0])
            let codes = try #require(replaced["result"]?.objectValue?["recovery_codes"]?.strings)
            for code in codes { SecretLedger.record(code) }
            #expect(codes.count == 10 && Set(codes).isDisjoint(with: enrolled.recoveryCodes))
            // The old codes are gone.
            #expect(
                try change("user.totp.disable", code: enrolled.recoveryCodes[1]).errorReason == "invalid_credentials")
            #expect(try change("user.totp.disable", code: enrolled.nextCode)["result"] != nil)
            #expect(try rpc.login("keep@example.com").access.isEmpty == false)

            // Enrolled again, then reset by an admin.
            _ = try Self.enrol(rpc, tokens)
            _ = try Self.firstStep(rpc, "keep@example.com")
            #expect(try rpc.result("user.totp.reset", ["id": .string(id)])["reset"] == .bool(true))
            #expect(try rpc.login("keep@example.com").access.isEmpty == false)
            #expect(try rpc.result("user.totp.reset", ["id": .string(id)])["reset"] == .bool(false))
            #expect(try rpc.call("user.totp.reset", ["id": .string("999999")]).errorReason == "not_found")
            #expect(daemon.events(named: "user_updated").contains { $0["AUTHD_REASON"] == .string("mfa_reset") })
        }
    }

    /// One mfa_token with two right recovery codes, sent at once on two
    /// connections: one session opens, the other is refused.
    @Test func oneMfaTokenOpensOneSessionWhateverArrivesAtOnce() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("race@example.com")
            let enrolled = try Self.enrol(rpc, try rpc.login("race@example.com"))
            for round in 0..<4 {
                let token = try Self.firstStep(rpc, "race@example.com")
                let codes = [enrolled.recoveryCodes[2 * round], enrolled.recoveryCodes[2 * round + 1]]
                let answers = try Self.atOnce(daemons: [daemon, daemon], token: token, codes: codes)
                #expect(answers.filter { $0["result"] != nil }.count == 1, "\(answers)")
                #expect(answers.filter { $0.errorReason == "invalid_credentials" }.count == 1)
            }
        }
    }

    /// Two daemons on one database, one code presented to both at once
    /// (each with an mfa_token of its own): one wins.
    @Test(.enabled(if: PostgresDatabases.isAvailable)) func oneCodeAtTwoDaemonsAtOnceOpensOneSession() throws {
        let database = try PostgresDatabases.create()
        let first = try DaemonProcess.started(flags: ["database-url": database])
        defer { first.tearDown() }
        let second = try DaemonProcess.started(flags: ["database-url": database])
        defer { second.tearDown() }
        let rpc = try first.connect()
        try rpc.createUser("hosts@example.com")
        let enrolled = try Self.enrol(rpc, try rpc.login("hosts@example.com"))
        let other = try second.connect()
        let tokens = [try Self.firstStep(rpc, "hosts@example.com"), try Self.firstStep(other, "hosts@example.com")]
        let connections = [rpc, other]
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        let answers = GatheredAnswers()
        for index in 0..<2 {
            DispatchQueue.global().async(group: group) {
                start.wait()
                if let answer = try? Self.secondStep(connections[index], tokens[index], enrolled.nextCode) {
                    answers.set(index, answer)
                }
            }
        }
        start.signal()
        start.signal()
        group.wait()
        let both = answers.all
        #expect(both.count == 2)
        #expect(both.filter { $0["result"] != nil }.count == 1, "\(both)")
    }

    static func atOnce(daemons: [DaemonProcess], token: String, codes: [String]) throws -> [JSONObject] {
        let connections = try daemons.map { try $0.connect() }
        defer { for connection in connections { connection.close() } }
        let start = DispatchSemaphore(value: 0)
        let sent = DispatchGroup()
        for (connection, code) in zip(connections, codes) {
            sent.enter()
            DispatchQueue.global().async {
                start.wait()
                try? connection.send(
                    RPCConnection.requestLine(
                        id: .int(1), method: "auth.mfa",
                        params: ["mfa_token": .string(token), "code": .string(code)]))
                sent.leave()
            }
        }
        for _ in connections { start.signal() }
        sent.wait()
        return try connections.map { try $0.readResponse() }
    }
}

/// Answers gathered from several threads.
private final class GatheredAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [Int: JSONObject] = [:]

    var all: [JSONObject] { lock.withLock { Array(answers.values) } }
    func set(_ index: Int, _ answer: JSONObject) { lock.withLock { answers[index] = answer } }
}
