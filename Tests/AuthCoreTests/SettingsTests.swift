import AuthCore
import Testing

@Suite struct SettingsTests {
    @Test func defaultsFollowTheContract() throws {
        let settings = try SettingsResolver.resolve(flags: [:], environment: [:], file: nil, cores: 2)
        #expect(settings.bcryptCost == 12)
        #expect(settings.accessTTL == 900)
        #expect(settings.refreshTTL == 604_800)
        #expect(settings.issuer == "authd")
        #expect(settings.audience == "authd-clients")
        #expect(settings.algorithm == .hs256)
        #expect(settings.loginMaxFailures == 5)
        #expect(settings.clientMaxFailures == 50)
        #expect(settings.loginWindow == 900)
        #expect(settings.sweepInterval == 600)
        #expect(settings.adminUIDs.isEmpty)
        #expect(settings.workers == 2)
        #expect(settings.maxQueue == 1024)
        #expect(settings.clockLeeway == 30)
        #expect(settings.maxLineBytes == 65_536)
        #expect(settings.maxInFlight == 256)
    }

    @Test func flagsBeatEnvironmentBeatsFileBeatsDefault() throws {
        let file: JSONObject = ["access_ttl": .number("100"), "refresh_ttl": .number("200"), "issuer": .string("f")]
        let environment = ["AUTHD_ACCESS_TTL": "300", "AUTHD_ISSUER": "e"]
        let flags = ["access_ttl": "400"]
        let settings = try SettingsResolver.resolve(flags: flags, environment: environment, file: file, cores: 1)
        #expect(settings.accessTTL == 400)
        #expect(settings.issuer == "e")
        #expect(settings.refreshTTL == 200)
        #expect(settings.audience == "authd-clients")
    }

    @Test func listsFromStringsOrArrays() throws {
        let file: JSONObject = ["admin_uids": .array([.number("1000"), .string("1001")])]
        let settings = try SettingsResolver.resolve(
            flags: [:], environment: ["AUTHD_ADMIN_GROUPS": "wheel, 27"], file: file, cores: 1)
        #expect(settings.adminUIDs == [1000, 1001])
        #expect(settings.adminGroups == ["wheel", "27"])
    }

    @Test func outOfRangeValuesNameTheSetting() {
        let cases: [(String, String)] = [
            ("bcrypt_cost", "9"), ("bcrypt_cost", "32"), ("clock_leeway", "301"), ("access_ttl", "abc"),
            ("algorithm", "RS256"), ("admin_uids", "root"), ("workers", "257"),
            ("instance_name", "host a"), ("instance_name", "a:b"), ("instance_name", String(repeating: "x", count: 65)),
            ("password_scheme", "scrypt"), ("password_scheme", "Argon2id"), ("argon2_memory_kib", "8191"),
            ("argon2_memory_kib", "1048577"), ("argon2_iterations", "0"), ("argon2_iterations", "11"),
            ("argon2_parallelism", "0"), ("argon2_parallelism", "9"), ("max_hash_memory_mib", "7"),
        ]
        for (name, value) in cases {
            do {
                _ = try SettingsResolver.resolve(flags: [name: value], environment: [:], file: nil, cores: 1)
                Issue.record("\(name)=\(value) was accepted")
            } catch {
                #expect(error.description.contains(name))
            }
        }
    }

    /// Config files in order (a main file, then drop-ins): each replaces
    /// the values it names, a list whole; flags and variables still win;
    /// every setting says where it came from, and the printout masks the
    /// database password.
    @Test func laterConfigFilesReplaceKeyByKeyAndSourcesAreReported() throws {
        let main = SettingsResolver.ConfigFile(
            path: "/etc/authd/authd.conf",
            object: [
                "access_ttl": .int(100), "admin_uids": .array([.int(1000), .int(1001)]), "issuer": .string("main"),
            ])
        let dropIn = SettingsResolver.ConfigFile(
            path: "/etc/authd/authd.conf.d/50-local.conf",
            object: [
                "admin_uids": .array([.int(2000)]), "issuer": .string("drop-in"),
                "database_url": .string("postgresql://authd:s3cret-pw@db.internal/authd"),
            ])
        let (settings, sources) = try SettingsResolver.resolve(
            flags: ["access_ttl": "300"], environment: ["AUTHD_AUDIENCE": "env-audience"], files: [main, dropIn],
            cores: 2)
        #expect(settings.accessTTL == 300)
        #expect(settings.adminUIDs == [2000])
        #expect(settings.issuer == "drop-in")
        #expect(settings.audience == "env-audience")
        #expect(sources["access_ttl"] == "--access-ttl")
        #expect(sources["audience"] == "AUTHD_AUDIENCE")
        #expect(sources["admin_uids"] == "/etc/authd/authd.conf.d/50-local.conf")
        #expect(sources["bcrypt_cost"] == "default")
        let printed = SettingsResolver.describe(settings, sources: sources)
        #expect(printed.split(separator: "\n").count == SettingsResolver.names.count)
        #expect(printed.contains("admin_uids = 2000  # /etc/authd/authd.conf.d/50-local.conf"))
        #expect(printed.contains("bcrypt_cost = 12  # default"))
        #expect(printed.contains("database_url = postgresql://authd:"))
        #expect(!printed.contains("s3cret-pw"))

        let unknown = SettingsResolver.ConfigFile(
            path: "/etc/authd/authd.conf.d/typo.conf", object: ["acces_ttl": .int(1)])
        #expect(throws: SettingsError.self) {
            _ = try SettingsResolver.resolve(flags: [:], environment: [:], files: [main, unknown], cores: 2)
        }
        let outOfRange = #expect(throws: SettingsError.self) {
            _ = try SettingsResolver.resolve(
                flags: [:], environment: [:],
                files: [SettingsResolver.ConfigFile(path: "/x/authd.conf.d/a.conf", object: ["access_ttl": .int(0)])],
                cores: 2)
        }
        #expect(outOfRange?.description.contains("/x/authd.conf.d/a.conf") == true)
    }

    /// Every hashing worker may hold an argon2id hash's memory at once:
    /// more than `max_hash_memory_mib` in all is refused, naming the three
    /// settings; with bcrypt the argon2 settings bound nothing.
    @Test func argon2MemoryIsBoundedAcrossTheWorkers() throws {
        let argon2 = ["password_scheme": "argon2id", "argon2_memory_kib": "65536", "workers": "9"]
        do {
            _ = try SettingsResolver.resolve(flags: argon2, environment: [:], file: nil, cores: 2)
            Issue.record("9 x 64 MiB was accepted under 512 MiB")
        } catch {
            for name in ["workers", "argon2_memory_kib", "max_hash_memory_mib"] {
                #expect(error.description.contains(name))
            }
        }
        var fits = argon2
        fits["max_hash_memory_mib"] = "512"
        fits["workers"] = "4"
        let settings = try SettingsResolver.resolve(flags: fits, environment: [:], file: nil, cores: 2)
        #expect(settings.passwordHashing.scheme == .argon2id)
        #expect(settings.passwordHashing.argon2 == .init(memoryKiB: 65_536, iterations: 2, parallelism: 1))
        var bcrypt = argon2
        bcrypt["password_scheme"] = "bcrypt"
        #expect(try SettingsResolver.resolve(flags: bcrypt, environment: [:], file: nil, cores: 2).workers == 9)
        let defaults = Settings(cores: 2).passwordHashing
        #expect(defaults.scheme == .bcrypt && defaults.bcryptCost == 12)
        #expect(defaults.argon2 == .init(memoryKiB: 19_456, iterations: 2, parallelism: 1))
    }

    @Test func anInstanceNameIsKeptAsGiven() throws {
        let settings = try SettingsResolver.resolve(
            flags: ["instance_name": "web-1.example_a"], environment: [:], file: nil, cores: 1)
        #expect(settings.instanceName == "web-1.example_a")
        #expect(try SettingsResolver.resolve(flags: [:], environment: [:], file: nil, cores: 1).instanceName == "")
    }

    @Test func zeroWorkersMeansOnePerCore() throws {
        let settings = try SettingsResolver.resolve(flags: ["workers": "0"], environment: [:], file: nil, cores: 6)
        #expect(settings.workers == 6)
    }

    @Test func unknownConfigKeysAreAnError() {
        #expect(throws: SettingsError.self) {
            try SettingsResolver.resolve(flags: [:], environment: [:], file: ["bcrypt_costt": .number("12")], cores: 1)
        }
    }

    @Test func namesMapToFlagsAndVariables() {
        #expect(SettingsResolver.flagName("bcrypt_cost") == "bcrypt-cost")
        #expect(SettingsResolver.environmentName("bcrypt_cost") == "AUTHD_BCRYPT_COST")
    }
}

@Suite struct SecurityEventTests {
    @Test func everyEventHasItsOwnMessageID() {
        let ids = SecurityEvent.Name.allCases.map(\.messageID)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.count == 32)
            #expect(id.allSatisfy { $0.isHexDigit })
        }
    }

    @Test func fieldsUseJournalNames() throws {
        let event = SecurityEvent(
            .loginFail, "Login failed", peerUID: 1000, peerPID: 42, client: "10.0.0.1", userID: 7,
            email: "a@example.com", reason: "wrong_password")
        let line = event.jsonLine
        #expect(line.last == 0x0A)
        let object = try JSONParser.parse(Array(line.dropLast())).objectValue!
        #expect(object["AUTHD_EVENT"] == .string("authn_login_fail"))
        #expect(object["MESSAGE_ID"] == .string(SecurityEvent.Name.loginFail.messageID))
        #expect(object["PRIORITY"] == .string("4"))
        #expect(object["AUTHD_PEER_UID"] == .string("1000"))
        #expect(object["AUTHD_PEER_PID"] == .string("42"))
        #expect(object["AUTHD_CLIENT"] == .string("10.0.0.1"))
        #expect(object["AUTHD_USER_ID"] == .string("7"))
        #expect(object["AUTHD_EMAIL"] == .string("a@example.com"))
        #expect(object["AUTHD_REASON"] == .string("wrong_password"))
    }
}

@Suite struct SettingFlagTests {
    @Test func settingFlagsAreTakenOffTheCommandLineAndTheRestIsKept() throws {
        let split = try SettingsResolver.extractFlags(from: [
            "--listen", "/tmp/s", "--bcrypt-cost", "11", "--state-dir", "/tmp/d", "--max-sessions-per-user=7",
        ])
        #expect(split.flags == ["bcrypt_cost": "11", "max_sessions_per_user": "7"])
        #expect(split.remaining == ["--listen", "/tmp/s", "--state-dir", "/tmp/d"])
        #expect(throws: SettingsError.self) { try SettingsResolver.extractFlags(from: ["--idle-timeout"]) }
    }

    @Test func everySettingHasOneDefinitionAndAFlag() throws {
        #expect(Set(SettingsResolver.names).count == SettingsResolver.names.count)
        for name in SettingsResolver.names {
            let split = try SettingsResolver.extractFlags(from: ["--" + SettingsResolver.flagName(name), "x"])
            #expect(split.flags[name] == "x")
        }
    }
}
