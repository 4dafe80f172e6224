import AuthCore
import AuthCrypto
import AuthStore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.timeLimit(.minutes(5))) struct LifecycleTests {
    @Test func aRestartWithTheSameStateKeepsUsersSessionsAndKeys() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        try rpc.createUser("keep@example.com")
        let tokens = try rpc.login("keep@example.com")
        #expect(daemon.stop() == 0)
        try daemon.start()
        let again = try daemon.connect()
        #expect(try again.verify(tokens.access)["result"] != nil)
        #expect(try again.result("auth.refresh", ["refresh_token": .string(tokens.refresh)])["access_token"] != nil)
        _ = try again.login("keep@example.com")
        // Generated keys are 0600 in a 0700 directory.
        for file in ["access-key", "refresh-key"] {
            var info = stat()
            #expect(stat(daemon.stateDirectory + "/keys/" + file, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
        }
        var info = stat()
        #expect(stat(daemon.stateDirectory + "/keys", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
    }

    @Test func everyAnsweredWriteSurvivesKillNine() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        var created: [String] = []
        var refreshTokens: [String] = []
        for round in 0..<3 {
            let rpc = try daemon.connect()
            for index in 0..<4 {
                let email = "k\(round)-\(index)@example.com"
                try rpc.createUser(email)
                created.append(email)
                let tokens = try rpc.login(email)
                let rotated = try rpc.result("auth.refresh", ["refresh_token": .string(tokens.refresh)])
                refreshTokens.append(rotated.string("refresh_token")!)
            }
            daemon.stop(signal: SIGKILL)
            #expect(daemon.terminationReason == .uncaughtSignal)
            try daemon.start()
        }
        let rpc = try daemon.connect()
        for email in created { _ = try rpc.login(email) }
        for token in refreshTokens {
            #expect(try rpc.result("auth.refresh", ["refresh_token": .string(token)])["refresh_token"] != nil)
        }
        daemon.stop()
        let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
        #expect(try database.integrityCheck() == "ok")
    }

    @Test func sigtermAnswersEveryRequestAlreadyReadAndExitsZero() throws {
        // A generous shutdown bound: this checks that answers are not lost,
        // not how fast four hashes run on a loaded (or sanitized) machine.
        let daemon = try DaemonProcess.started(flags: ["bcrypt-cost": "12", "workers": "1", "shutdown-timeout": "120"])
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        var lines = ""
        for index in 0..<4 {
            lines += RPCConnection.requestLine(
                id: .int(index), method: "auth.login",
                params: [
                    "email": .string("t\(index)@example.com"), "password": .string("whatever1"),
                    "client": .string("c\(index)"),
                ])
        }
        try rpc.send(lines)
        // Wait until all four are read and in flight (stats counts itself too).
        let observer = try daemon.connect()
        var inFlight: Int64 = 0
        for _ in 0..<200 where inFlight < 5 {
            inFlight = try observer.result("stats")["in_flight"]?.int64Value ?? 0
            if inFlight < 5 { usleep(5_000) }
        }
        #expect(inFlight >= 5)
        kill(daemon.pid, SIGTERM)
        var answered = 0
        while let line = try rpc.readLine() {
            let response = try JSONParser.parse(line).objectValue!
            #expect(response.errorReason == "invalid_credentials")
            answered += 1
        }
        #expect(answered == 4)
        #expect(daemon.stop() == 0)
        #expect(daemon.terminationReason == .exit)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
        #expect(daemon.events(named: "sys_shutdown").count == 1)
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        daemon.stop(signal: SIGKILL)
        #expect(FileManager.default.fileExists(atPath: daemon.socketPath))
        try daemon.start()
        #expect(try daemon.connect().result("sys.health").string("status") == "ok")
    }

    @Test func socketActivationTakesTheListeningSocketFromSystemd() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = directory + "/activated.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        process.arguments = [
            "--listen=" + socketPath, DaemonProcess.binary, "--state-dir", directory + "/state", "--bcrypt-cost", "10",
        ]
        process.environment = DaemonProcess.baseEnvironment
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        var connection: RPCConnection?
        for _ in 0..<500 where connection == nil {
            connection = try? RPCConnection(path: socketPath)
            if connection == nil { usleep(10_000) }
        }
        let rpc = try #require(connection)
        #expect(try rpc.result("sys.health").string("status") == "ok")
    }

    @Test func startUpErrorsNameTheProblemAndNeverTheSecret() throws {
        let secret = "s3cr3t-value-that-must-never-be-printed-0123"
        let cases: [([String], [String: String], String)] = [
            (["--state-dir", "$DIR/s"], [:], "--listen"),
            (["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s"], ["JWT_SECRET": secret], "JWT_REFRESH_SECRET"),
            (["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s"], ["JWT_REFRESH_SECRET": secret], "JWT_SECRET"),
            (
                ["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s"],
                ["JWT_SECRET": secret, "JWT_REFRESH_SECRET": secret], "equal"
            ),
            (
                ["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s"],
                ["JWT_SECRET": "short", "JWT_REFRESH_SECRET": secret], "shorter than 32 bytes"
            ),
            (["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s", "--bcrypt-cost", "9"], [:], "bcrypt_cost"),
            (
                [
                    "--listen", "$DIR/a.sock", "--state-dir", "$DIR/s", "--password-scheme", "argon2id",
                    "--workers", "4", "--argon2-memory-kib", "262144",
                ], [:], "max_hash_memory_mib"
            ),
            (["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s"], ["AUTHD_CLOCK_LEEWAY": "301"], "clock_leeway"),
            (
                ["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s", "--config", "/nonexistent.json"], [:],
                "config file"
            ),
            (
                ["--listen", "$DIR/a.sock", "--state-dir", "$DIR/s", "--admin-groups", "no-such-group-x"], [:],
                "admin_groups"
            ),
        ]
        for (arguments, environment, expected) in cases {
            let (status, output) = try DaemonProcess.runToExit(arguments: arguments, environment: environment)
            #expect(status != 0, "\(arguments) \(environment.keys)")
            #expect(output.contains(expected), "\(output)")
            #expect(!output.contains(secret))
            #expect(!output.contains("short\""))
        }
    }

    @Test func settingsComeFromFlagsThenEnvironmentThenConfigFile() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/authd.json"
        try Data(#"{"access_ttl": 111, "refresh_ttl": 222, "issuer": "from-file"}"#.utf8).write(
            to: URL(fileURLWithPath: config))
        try withDaemon(
            flags: ["config": config, "access-ttl": "333"], environment: ["AUTHD_REFRESH_TTL": "444"]
        ) { _, rpc in
            try rpc.createUser("cfg@example.com")
            let login = try rpc.result(
                "auth.login", ["email": .string("cfg@example.com"), "password": .string(defaultPassword)])
            #expect(login["expires_in"] == .int(333))
            #expect(login["refresh_expires_in"] == .int(444))
            let claims = try rpc.verify(login.string("access_token")!)["result"]?.objectValue?["claims"]?.objectValue
            #expect(claims?.string("iss") == "from-file")
        }
    }

    static func loginParams(_ email: String) -> JSONObject {
        ["email": .string(email), "password": .string(defaultPassword)]
    }

    /// `--config-dir`: its authd.conf is optional, its drop-ins apply in
    /// name order, `--config` comes last and must exist; `--print-config`
    /// shows every setting with its source, the password masked.
    @Test func aConfigDirectoryWithDropInsAndPrintConfig() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configDirectory = directory + "/etc"
        try FileManager.default.createDirectory(
            atPath: configDirectory + "/authd.conf.d", withIntermediateDirectories: true)
        // No authd.conf yet: the daemon starts on the defaults.
        try withDaemon(flags: ["config-dir": configDirectory]) { _, rpc in
            try rpc.createUser("dir@example.com")
            #expect(try rpc.result("auth.login", Self.loginParams("dir@example.com"))["expires_in"] == .int(900))
        }
        try Data(#"{"access_ttl": 100, "issuer": "main"}"#.utf8).write(
            to: URL(fileURLWithPath: configDirectory + "/authd.conf"))
        try Data(#"{"access_ttl": 200}"#.utf8).write(
            to: URL(fileURLWithPath: configDirectory + "/authd.conf.d/10-first.conf"))
        try Data(#"{"access_ttl": 300}"#.utf8).write(
            to: URL(fileURLWithPath: configDirectory + "/authd.conf.d/20-second.conf"))
        try Data(#"{"access_ttl": 999}"#.utf8).write(
            to: URL(fileURLWithPath: configDirectory + "/authd.conf.d/30-ignored.conf.disabled"))
        try withDaemon(flags: ["config-dir": configDirectory]) { _, rpc in
            try rpc.createUser("dir@example.com")
            #expect(try rpc.result("auth.login", Self.loginParams("dir@example.com"))["expires_in"] == .int(300))
        }
        let (status, output) = try DaemonProcess.runToExit(
            arguments: [
                "--print-config", "--config-dir", configDirectory, "--database-url",
                "postgresql://authd:pw-not-shown@db.internal/authd",
            ], environment: [:])
        #expect(status == 0, "\(output)")
        #expect(output.contains("access_ttl = 300  # \(configDirectory)/authd.conf.d/20-second.conf"))
        #expect(output.contains("issuer = main  # \(configDirectory)/authd.conf"))
        #expect(output.contains("bcrypt_cost = 12  # default"))
        #expect(output.contains("database_url = postgresql://authd:"))
        #expect(!output.contains("pw-not-shown"))
        let missing = try DaemonProcess.runToExit(
            arguments: ["--print-config", "--config-dir", configDirectory, "--config", directory + "/nope.json"],
            environment: [:])
        #expect(missing.0 != 0 && missing.1.contains("cannot read the config file"))
        // A drop-in linked to /dev/null is masked; a typo in the directory,
        // or a drop-in folder that is a file, is an error, not the defaults.
        try FileManager.default.createSymbolicLink(
            atPath: configDirectory + "/authd.conf.d/25-masked.conf", withDestinationPath: "/dev/null")
        let masked = try DaemonProcess.runToExit(arguments: ["--print-config", "--config-dir", configDirectory])
        #expect(masked.0 == 0 && masked.1.contains("access_ttl = 300"), "\(masked.1)")
        let typo = try DaemonProcess.runToExit(arguments: ["--print-config", "--config-dir", directory + "/etcc"])
        #expect(typo.0 != 0 && typo.1.contains("is not a readable directory"))
        let flat = directory + "/flat"
        try FileManager.default.createDirectory(atPath: flat, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: flat + "/authd.conf.d"))
        let notADirectory = try DaemonProcess.runToExit(arguments: ["--print-config", "--config-dir", flat])
        #expect(notADirectory.0 != 0 && notADirectory.1.contains("authd.conf.d is not a readable directory"))
    }

    @Test func sighupReloadsTheConfigFileWithoutDroppingConnections() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = URL(fileURLWithPath: directory + "/authd.json")
        try Data(#"{"access_ttl": 100}"#.utf8).write(to: config)
        try withDaemon(flags: ["config": config.path]) { daemon, rpc in
            try rpc.createUser("hup@example.com")
            #expect(
                try rpc.result(
                    "auth.login", ["email": .string("hup@example.com"), "password": .string(defaultPassword)])[
                        "expires_in"] == .int(100))
            try Data(#"{"access_ttl": 200}"#.utf8).write(to: config)
            kill(daemon.pid, SIGHUP)
            var ttl: JSONValue?
            for _ in 0..<250 where ttl != .int(200) {
                usleep(20_000)
                ttl = try rpc.result(
                    "auth.login", ["email": .string("hup@example.com"), "password": .string(defaultPassword)])[
                        "expires_in"]
            }
            #expect(ttl == .int(200))
            // A broken file keeps the previous configuration: the reload is
            // seen to run (and fail, in the log) before the check.
            try Data("{not json".utf8).write(to: config)
            kill(daemon.pid, SIGHUP)
            for _ in 0..<500 where !daemon.stderr.contains("reload failed") { usleep(10_000) }
            #expect(daemon.stderr.contains("reload failed; keeping the previous configuration"))
            #expect(daemon.isRunning)
            #expect(
                try rpc.result(
                    "auth.login", ["email": .string("hup@example.com"), "password": .string(defaultPassword)])[
                        "expires_in"] == .int(200))
        }
    }

    /// The hashing pool keeps its size until a restart, so a reload's
    /// argon2id memory is checked against the workers running: fewer
    /// workers in the file do not let a bigger `argon2_memory_kib` past
    /// `max_hash_memory_mib`, and the previous configuration stays.
    @Test func aReloadChecksArgon2MemoryAgainstTheRunningWorkers() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = URL(fileURLWithPath: directory + "/authd.json")
        let first =
            #"{"password_scheme": "argon2id", "workers": 4, "argon2_memory_kib": 8192, "argon2_iterations": 1, "max_hash_memory_mib": 64}"#
        try Data(first.utf8).write(to: config)
        try withDaemon(flags: ["config": config.path]) { daemon, rpc in
            try rpc.createUser("before@example.com")
            let bigger =
                #"{"password_scheme": "argon2id", "workers": 1, "argon2_memory_kib": 32768, "argon2_iterations": 1, "max_hash_memory_mib": 64}"#
            try Data(bigger.utf8).write(to: config)
            kill(daemon.pid, SIGHUP)
            for _ in 0..<500 where !daemon.stderr.contains("reload failed") { usleep(10_000) }
            #expect(daemon.stderr.contains("reload failed; keeping the previous configuration"))
            #expect(daemon.stderr.contains("max_hash_memory_mib"))
            try rpc.createUser("after@example.com")
            daemon.stop()
            let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
            #expect(
                try database.user(email: "after@example.com")?.passwordHash.hasPrefix("$argon2id$v=19$m=8192,") == true)
        }
    }

    /// A token checked (and cached) under the old access key is refused
    /// once the key is replaced and reloaded: the cache of checked tokens
    /// goes with the keys.
    @Test func aReplacedAccessKeyRefusesItsTokensAfterSighupEvenCachedOnes() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyFile = URL(fileURLWithPath: directory + "/access-key")
        try Data("leaked-access-key-0123456789abcdefghijklmn".utf8).write(to: keyFile)
        try Data("credential-refresh-key-0123456789abcdefghij".utf8).write(
            to: URL(fileURLWithPath: directory + "/refresh-key"))
        try withDaemon(environment: ["CREDENTIALS_DIRECTORY": directory]) { daemon, rpc in
            try rpc.createUser("rotate@example.com")
            let old = try rpc.login("rotate@example.com").access
            for _ in 0..<3 { #expect(try rpc.verify(old)["result"] != nil) }
            try Data("replacement-access-key-0123456789abcdefghij".utf8).write(to: keyFile)
            kill(daemon.pid, SIGHUP)
            #expect(eventually { (try? rpc.verify(old))?.errorReason == "token_invalid" })
            let new = try rpc.login("rotate@example.com").access
            #expect(try rpc.verify(new)["result"] != nil)
            #expect(try rpc.verify(old).errorReason == "token_invalid")
        }
    }

    @Test func keysFromCredentialsAreTheOnesUsed() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let accessSecret = "credential-access-key-0123456789abcdefghij"
        try Data((accessSecret + "\n").utf8).write(to: URL(fileURLWithPath: directory + "/access-key"))
        try Data("credential-refresh-key-0123456789abcdefghij".utf8).write(
            to: URL(fileURLWithPath: directory + "/refresh-key"))
        try withDaemon(environment: ["CREDENTIALS_DIRECTORY": directory]) { daemon, rpc in
            try rpc.createUser("cred@example.com")
            let tokens = try rpc.login("cred@example.com")
            #expect(hmacValid(tokens.access, secret: accessSecret))
            #expect(!FileManager.default.fileExists(atPath: daemon.stateDirectory + "/keys/access-key"))
        }
        let envSecret = "environment-access-secret-0123456789abcdef"
        try withDaemon(
            environment: ["JWT_SECRET": envSecret, "JWT_REFRESH_SECRET": "environment-refresh-secret-0123456789abc"]
        ) { daemon, rpc in
            try rpc.createUser("env@example.com")
            #expect(hmacValid(try rpc.login("env@example.com").access, secret: envSecret))
            #expect(!daemon.stderr.contains(envSecret))
        }
    }

    @Test func theSweeperDeletesExpiredSessions() throws {
        try withDaemon(flags: ["refresh-ttl": "4", "sweep-interval": "1"]) { daemon, rpc in
            try rpc.createUser("sweep@example.com")
            _ = try rpc.login("sweep@example.com")
            _ = try rpc.login("sweep@example.com")
            let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
            #expect(try database.rowCounts()["sessions"] == 2)
            #expect(try database.rowCounts()["refresh_tokens"] == 2)
            var rows = 2
            for _ in 0..<150 where rows > 0 {
                usleep(100_000)
                rows = try database.rowCounts()["sessions"] ?? -1
            }
            #expect(rows == 0)
            #expect(try database.rowCounts()["refresh_tokens"] == 0)
            #expect(!daemon.events(named: "session_expired").isEmpty)
        }
    }

    @Test func aWeakerStoredHashIsUpgradedOnLogin() throws {
        let daemon = try DaemonProcess.started(flags: ["bcrypt-cost": "10"])
        defer { daemon.tearDown() }
        try daemon.connect().createUser("up@example.com")
        daemon.stop()
        let upgraded = DaemonProcess(flags: ["bcrypt-cost": "11"], directory: daemon.directory)
        try upgraded.start()
        defer { upgraded.stop() }
        _ = try upgraded.connect().login("up@example.com")
        let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
        var cost: Int?
        for _ in 0..<100 where cost != 11 {
            cost = try database.user(email: "up@example.com").flatMap { Bcrypt.cost(of: $0.passwordHash) }
            usleep(20_000)
        }
        #expect(cost == 11)
        _ = try upgraded.connect().login("up@example.com")
    }

    /// A switch to argon2id and back, on the real daemon and SQLite file:
    /// each account moves to the configured scheme at its next login, and
    /// one whose password is longer than bcrypt takes keeps argon2id.
    @Test func passwordsMoveToTheConfiguredSchemeAtLogin() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        try daemon.connect().createUser("early@example.com")
        daemon.stop()
        let argon2Flags = ["password-scheme": "argon2id", "argon2-memory-kib": "8192", "argon2-iterations": "1"]
        let argon2 = DaemonProcess(flags: argon2Flags, directory: daemon.directory)
        try argon2.start()
        let rpc = try argon2.connect()
        let long = String(repeating: "long passphrase ", count: 8)
        try rpc.createUser("long@example.com", password: long)
        _ = try rpc.login("early@example.com")
        let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
        let hash = { (email: String) in try database.user(email: email)?.passwordHash ?? "" }
        var early = try hash("early@example.com")
        for _ in 0..<100 where !early.hasPrefix("$argon2id$") {
            usleep(20_000)
            early = try hash("early@example.com")
        }
        #expect(early.hasPrefix("$argon2id$v=19$m=8192,t=1,p=1$"))
        #expect(try hash("long@example.com").hasPrefix("$argon2id$v=19$m=8192,t=1,p=1$"))
        argon2.stop()

        let back = DaemonProcess(directory: daemon.directory)
        try back.start()
        defer { back.stop() }
        let again = try back.connect()
        _ = try again.login("early@example.com")
        _ = try again.login("long@example.com", password: long)
        for _ in 0..<100 where try hash("early@example.com").hasPrefix("$argon2id$") { usleep(20_000) }
        #expect(try Bcrypt.cost(of: hash("early@example.com")) == 10)
        _ = try again.login("early@example.com")
        _ = try again.login("long@example.com", password: long)
        #expect(try hash("long@example.com").hasPrefix("$argon2id$"))
    }

    @Test func securityEventsCarryPeerFieldsAndNoSecrets() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("ev@example.com")
            let tokens = try rpc.login("ev@example.com", client: "192.0.2.7")
            _ = try rpc.call("auth.login", ["email": .string("ev@example.com"), "password": .string("Wr0ng-Passw0rd")])
            _ = try rpc.result("auth.refresh", ["refresh_token": .string(tokens.refresh)])
            let fail = try #require(daemon.events(named: "authn_login_fail").first)
            #expect(fail.string("MESSAGE_ID") == SecurityEvent.Name.loginFail.messageID)
            #expect(fail.string("PRIORITY") == "4")
            #expect(fail.string("AUTHD_PEER_UID") == String(getuid()))
            #expect(fail.string("AUTHD_PEER_PID") == String(getpid()))
            #expect(fail.string("AUTHD_EMAIL") == "ev@example.com")
            #expect(fail.string("AUTHD_REASON") == "wrong_password")
            let success = try #require(daemon.events(named: "authn_login_success").first)
            #expect(success.string("AUTHD_CLIENT") == "192.0.2.7")
            let everything = daemon.stderr
            for secret in [defaultPassword, "Wr0ng-Passw0rd", tokens.access, tokens.refresh] {
                #expect(!everything.contains(secret))
            }
            // The database holds no refresh token in replayable form.
            let file = try Data(contentsOf: URL(fileURLWithPath: daemon.stateDirectory + "/authd.sqlite3"))
            let wal =
                (try? Data(contentsOf: URL(fileURLWithPath: daemon.stateDirectory + "/authd.sqlite3-wal"))) ?? Data()
            for token in [tokens.refresh, tokens.access] {
                let needle = Data(token.utf8.suffix(43))
                #expect(file.range(of: needle) == nil)
                #expect(wal.range(of: needle) == nil)
            }
        }
    }
}

/// Checks a token's HS256 signature with a known secret, independently of the daemon.
func hmacValid(_ token: String, secret: String) -> Bool {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let signature = Base64URL.decode(String(parts[2])) else { return false }
    let input = Array((parts[0] + "." + parts[1]).utf8)
    return HMACKey(bytes: Array(secret.utf8)).authenticate(input) == signature
}
