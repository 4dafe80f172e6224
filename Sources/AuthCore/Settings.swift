import AuthCrypto

/// Every setting of the daemon, with the contract's defaults.
public struct Settings: Sendable, Equatable {
    public var bcryptCost = 12
    /// The scheme of new password hashes; stored hashes of the other one
    /// keep verifying and move to this one at their next login.
    public var passwordScheme = PasswordHashing.Scheme.bcrypt
    public var argon2MemoryKiB = 19_456
    public var argon2Iterations = 2
    public var argon2Parallelism = 1
    /// Bound on what the hashing workers may hold at once with argon2id:
    /// `workers` x `argon2_memory_kib` must fit under it.
    public var maxHashMemoryMiB = 512
    public var accessTTL: Int64 = 900
    public var refreshTTL: Int64 = 604_800
    public var issuer = "authd"
    public var audience = "authd-clients"
    public var algorithm = SigningAlgorithm.hs256
    public var loginMaxFailures = 5
    public var clientMaxFailures = 50
    public var loginWindow: Int64 = 900
    public var sweepInterval: Int64 = 600
    /// Extra admin uids; uid 0 is always an admin.
    public var adminUIDs: [UInt32] = []
    /// Group names or numeric gids.
    public var adminGroups: [String] = []
    public var workers: Int
    public var maxQueue = 1024
    public var clockLeeway: Int64 = 30
    public var maxLineBytes = 65_536
    public var maxInFlight = 256
    /// How long SIGTERM waits for jobs in flight before exiting anyway.
    public var shutdownTimeout: Int64 = 10
    /// A connection that sends nothing for this long, with nothing in
    /// flight (idle, or stalled half-way through a line), is closed.
    public var idleTimeout: Int64 = 300
    /// Open connections at most, in all; past it a new one is answered
    /// `503 busy` and closed.
    public var maxConnections = 4096
    /// Open connections at most from one peer uid.
    public var maxConnectionsPerPeer = 256
    /// Of `maxConnections`, this many only admin peers (root, admin uids or
    /// groups) may use, so a flood from others never locks them out.
    public var adminReservedConnections = 16
    /// Hashing jobs one peer uid may have queued; 0 means a quarter of
    /// `maxQueue`. See `effectiveMaxQueuePerPeer`.
    public var maxQueuePerPeer = 0
    /// Refreshes per session per second.
    public var refreshRateLimit = 10
    /// Seconds after a refresh token is spent during which presenting it
    /// again answers with the same successor instead of revoking the
    /// session as reuse (a lost answer, two processes refreshing at once).
    /// 0: no grace, every second presentation is reuse.
    public var refreshGrace: Int64 = 0
    /// Live sessions per user; a new one revokes the least recently used.
    public var maxSessionsPerUser = 100
    /// PostgreSQL, shared by several daemons; nil: SQLite in the state
    /// directory. Chosen at start only (a reload cannot change it).
    public var databaseURL: DatabaseURL?
    /// Connections to PostgreSQL at most.
    public var databasePoolSize = 8
    /// Seconds a connection attempt or a statement may take.
    public var databaseTimeout: Int64 = 5
    /// Seconds a daemon cut off from PostgreSQL keeps answering
    /// `token.verify` from its view after its last confirmed sync.
    public var maxStaleness: Int64 = 30
    /// This host's name in keys shared with other hosts (the default
    /// failed-login client key: uid 1001 on two hosts is two services);
    /// empty: the daemon uses the machine id.
    public var instanceName = ""

    public init(cores: Int) {
        workers = max(1, cores)
    }

    /// With argon2id, every worker may run a hash at once, each holding its
    /// memory: a configuration over `max_hash_memory_mib` is refused here
    /// rather than found out by the OOM killer (the budget of
    /// `HashMemoryBudget` bounds every other case: padding, stored hashes).
    public func checkHashMemory() throws(SettingsError) {
        let needKiB = workers * argon2MemoryKiB
        guard passwordScheme == .argon2id, needKiB > maxHashMemoryMiB * 1024 else { return }
        throw SettingsError(
            "workers (\(workers)) x argon2_memory_kib (\(argon2MemoryKiB)) is \(needKiB) KiB, over max_hash_memory_mib (\(maxHashMemoryMiB) MiB = \(maxHashMemoryMiB * 1024) KiB): lower one of the first two or raise the last"
        )
    }

    /// How new passwords are hashed.
    public var passwordHashing: PasswordHashing {
        PasswordHashing(
            scheme: passwordScheme, bcryptCost: bcryptCost,
            argon2: .init(memoryKiB: argon2MemoryKiB, iterations: argon2Iterations, parallelism: argon2Parallelism))
    }

    public var tokenPolicy: TokenPolicy {
        TokenPolicy(issuer: issuer, audience: audience, leeway: clockLeeway)
    }

    public var effectiveMaxQueuePerPeer: Int {
        maxQueuePerPeer == 0 ? max(1, maxQueue / 4) : min(maxQueuePerPeer, maxQueue)
    }

    public var connectionLimits: ConnectionAdmission.Limits {
        .init(maximum: maxConnections, perPeer: maxConnectionsPerPeer, adminReserved: adminReservedConnections)
    }

    public var throttleLimits: LoginThrottle.Limits {
        .init(accountMaxFailures: loginMaxFailures, clientMaxFailures: clientMaxFailures, window: loginWindow)
    }
}

/// A setting that could not be applied; names the setting and the source,
/// never echoes a secret (no setting here is one).
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One setting: its snake_case name (the config key; `--kebab-case` as a
/// flag, `AUTHD_` + upper case as a variable) and how a value is checked
/// and applied. The default is the `Settings` property's initial value; the
/// name and range live here, once.
public struct SettingDefinition: Sendable {
    public let name: String
    let apply:
        @Sendable (_ value: String, _ source: String, _ cores: Int, _ settings: inout Settings) throws(SettingsError) ->
            Void
    /// The setting's value in `settings`, as a flag would give it (secrets
    /// masked).
    public let render: @Sendable (Settings) -> String

    init(
        name: String, render: @escaping @Sendable (Settings) -> String,
        _ apply: @escaping @Sendable (String, String, Int, inout Settings) throws(SettingsError) -> Void
    ) {
        self.name = name
        self.render = render
        self.apply = apply
    }

    static func integer<Value: BinaryInteger & Sendable>(
        _ name: String, _ range: ClosedRange<Int64>, _ field: WritableKeyPath<Settings, Value> & Sendable
    ) -> SettingDefinition {
        SettingDefinition(name: name, render: { String($0[keyPath: field]) }) {
            value, source, _, settings throws(SettingsError) in
            guard let parsed = Int64(value.trimmingWhitespace()), range.contains(parsed) else {
                throw SettingsError(
                    "\(source): \(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            settings[keyPath: field] = Value(parsed)
        }
    }

    static func text(_ name: String, _ field: WritableKeyPath<Settings, String> & Sendable) -> SettingDefinition {
        SettingDefinition(name: name, render: { $0[keyPath: field] }) {
            value, source, _, settings throws(SettingsError) in
            let trimmed = value.trimmingWhitespace()
            guard !trimmed.isEmpty, trimmed.utf8.count <= 256 else {
                throw SettingsError("\(source): \(name) must be a non-empty string of at most 256 bytes")
            }
            settings[keyPath: field] = trimmed
        }
    }
}

/// Resolves settings from, highest first, flags, `AUTHD_*` environment
/// variables, the config file (a JSON object with snake_case keys) and the
/// defaults. Pure: the caller reads the environment and the file.
public enum SettingsResolver {
    /// Every setting, in the order the documentation lists them.
    public static let definitions: [SettingDefinition] = [
        .integer("bcrypt_cost", 10...31, \.bcryptCost),
        SettingDefinition(name: "password_scheme", render: { $0.passwordScheme.rawValue }) {
            value, source, _, settings throws(SettingsError) in
            guard let scheme = PasswordHashing.Scheme(rawValue: value.trimmingWhitespace()) else {
                throw SettingsError("\(source): password_scheme must be bcrypt or argon2id")
            }
            settings.passwordScheme = scheme
        },
        .integer("argon2_memory_kib", 8_192...1_048_576, \.argon2MemoryKiB),
        .integer("argon2_iterations", 1...10, \.argon2Iterations),
        .integer("argon2_parallelism", 1...8, \.argon2Parallelism),
        .integer("max_hash_memory_mib", 8...1_048_576, \.maxHashMemoryMiB),
        .integer("access_ttl", 1...86_400, \.accessTTL),
        .integer("refresh_ttl", 1...31_536_000, \.refreshTTL),
        .text("issuer", \.issuer),
        .text("audience", \.audience),
        SettingDefinition(name: "algorithm", render: { $0.algorithm.rawValue }) {
            value, source, _, settings throws(SettingsError) in
            guard let algorithm = SigningAlgorithm(rawValue: value.trimmingWhitespace()) else {
                throw SettingsError("\(source): algorithm must be HS256 or EdDSA")
            }
            settings.algorithm = algorithm
        },
        .integer("login_max_failures", 1...1_000_000, \.loginMaxFailures),
        .integer("client_max_failures", 1...1_000_000, \.clientMaxFailures),
        .integer("login_window", 1...604_800, \.loginWindow),
        .integer("sweep_interval", 1...604_800, \.sweepInterval),
        SettingDefinition(name: "admin_uids", render: { $0.adminUIDs.map(String.init).joined(separator: ",") }) {
            value, source, _, settings throws(SettingsError) in
            var uids: [UInt32] = []
            for item in list(value) {
                guard let uid = UInt32(item) else {
                    throw SettingsError("\(source): admin_uids must be comma-separated numeric uids")
                }
                uids.append(uid)
            }
            settings.adminUIDs = uids
        },
        SettingDefinition(name: "admin_groups", render: { $0.adminGroups.joined(separator: ",") }) {
            value, _, _, settings in settings.adminGroups = list(value)
        },
        SettingDefinition(name: "workers", render: { String($0.workers) }) {
            value, source, cores, settings throws(SettingsError) in
            // 0 means one per core, the default.
            guard let workers = Int(value.trimmingWhitespace()), (0...256).contains(workers) else {
                throw SettingsError("\(source): workers must be a whole number from 0 to 256")
            }
            settings.workers = workers == 0 ? max(1, cores) : workers
        },
        .integer("max_queue", 1...1_000_000, \.maxQueue),
        .integer("clock_leeway", 0...300, \.clockLeeway),
        .integer("max_line_bytes", 1024...16_777_216, \.maxLineBytes),
        .integer("max_in_flight", 1...65_536, \.maxInFlight),
        .integer("shutdown_timeout", 1...600, \.shutdownTimeout),
        .integer("idle_timeout", 1...86_400, \.idleTimeout),
        .integer("max_connections", 1...1_000_000, \.maxConnections),
        .integer("max_connections_per_peer", 1...1_000_000, \.maxConnectionsPerPeer),
        .integer("admin_reserved_connections", 0...1_000_000, \.adminReservedConnections),
        .integer("max_queue_per_peer", 0...1_000_000, \.maxQueuePerPeer),
        .integer("refresh_rate_limit", 1...1_000_000, \.refreshRateLimit),
        .integer("refresh_grace", 0...60, \.refreshGrace),
        .integer("max_sessions_per_user", 1...1_000_000, \.maxSessionsPerUser),
        SettingDefinition(name: "database_url", render: { $0.databaseURL.map { "\($0)" } ?? "" }) {
            value, source, _, settings throws(SettingsError) in
            let trimmed = value.trimmingWhitespace()
            guard !trimmed.isEmpty else { return settings.databaseURL = nil }
            do throws(DatabaseURL.ParseError) {
                settings.databaseURL = try DatabaseURL.parse(trimmed)
            } catch {
                // The parser's message never echoes the password.
                throw SettingsError("\(source): database_url: \(error.description)")
            }
        },
        .integer("database_pool_size", 1...256, \.databasePoolSize),
        .integer("database_timeout", 1...300, \.databaseTimeout),
        .integer("max_staleness", 0...3_600, \.maxStaleness),
        SettingDefinition(name: "instance_name", render: { $0.instanceName }) {
            value, source, _, settings throws(SettingsError) in
            let name = value.trimmingWhitespace()
            let allowed = name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == 0x2D
                    || byte == 0x2E || byte == 0x5F
            }
            guard name.utf8.count <= 64, allowed else {
                throw SettingsError("\(source): instance_name must be up to 64 letters, digits, '.', '-' or '_'")
            }
            settings.instanceName = name
        },
    ]

    /// The snake_case names of every setting, as config keys.
    public static var names: [String] { definitions.map(\.name) }

    public static func environmentName(_ name: String) -> String { "AUTHD_" + name.uppercased() }
    public static func flagName(_ name: String) -> String { name.replacingUnderscores() }

    public static func resolve(
        flags: [String: String], environment: [String: String], file: JSONObject?, cores: Int
    ) throws(SettingsError) -> Settings {
        try resolve(
            flags: flags, environment: environment,
            files: file.map { [ConfigFile(path: "config file", object: $0)] } ?? [],
            cores: cores
        ).settings
    }

    /// A config file read: its path (for messages) and its object.
    public struct ConfigFile: Sendable {
        public let path: String
        public let object: JSONObject
        public init(path: String, object: JSONObject) {
            self.path = path
            self.object = object
        }
    }

    /// Resolves from config files read in order (a main file, then drop-ins
    /// in name order), each replacing the values it names, key by key (a
    /// list whole); returns where each setting came from too: `--flag`,
    /// `AUTHD_NAME`, a file's path, or `default`.
    public static func resolve(
        flags: [String: String], environment: [String: String], files: [ConfigFile], cores: Int
    ) throws(SettingsError) -> (settings: Settings, sources: [String: String]) {
        for file in files {
            for key in file.object.keys where !names.contains(key) {
                throw SettingsError("\(file.path): unknown setting '\(key)'")
            }
        }
        var settings = Settings(cores: cores)
        var sources: [String: String] = [:]
        for definition in definitions {
            let name = definition.name
            let raw: (value: String, source: String, origin: String)?
            if let flag = flags[name] {
                raw = (flag, "--\(flagName(name))", "--\(flagName(name))")
            } else if let env = environment[environmentName(name)] {
                raw = (env, environmentName(name), environmentName(name))
            } else if let file = files.last(where: { $0.object[name] != nil }), let value = file.object[name] {
                let source = file.path == "config file" ? "config file '\(name)'" : "\(file.path) '\(name)'"
                raw = (try fileValue(value, name: name, source: source), source, file.path)
            } else {
                raw = nil
            }
            if let raw { try definition.apply(raw.value, raw.source, cores, &settings) }
            sources[name] = raw?.origin ?? "default"
        }
        if settings.adminReservedConnections >= settings.maxConnections {
            throw SettingsError("admin_reserved_connections must be less than max_connections")
        }
        try settings.checkHashMemory()
        return (settings, sources)
    }

    /// The effective settings, one `name = value  # source` line each, in
    /// the documentation's order (what `authd --print-config` prints;
    /// `database_url`'s password is masked).
    public static func describe(_ settings: Settings, sources: [String: String]) -> String {
        definitions.map { definition in
            "\(definition.name) = \(definition.render(settings))  # \(sources[definition.name] ?? "default")"
        }.joined(separator: "\n")
    }

    /// Takes the setting flags (`--bcrypt-cost 12` or `--bcrypt-cost=12`) out
    /// of a command line; returns them by setting name, and the rest.
    public static func extractFlags(from arguments: [String]) throws(SettingsError) -> (
        flags: [String: String], remaining: [String]
    ) {
        let byFlag = Dictionary(uniqueKeysWithValues: names.map { ("--" + flagName($0), $0) })
        var flags: [String: String] = [:]
        var remaining: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if let name = byFlag[String(parts[0])] {
                if parts.count == 2 {
                    flags[name] = String(parts[1])
                } else {
                    guard index + 1 < arguments.count else { throw SettingsError("\(argument) needs a value") }
                    index += 1
                    flags[name] = arguments[index]
                }
            } else {
                remaining.append(argument)
            }
            index += 1
        }
        return (flags, remaining)
    }

    private static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    private static func fileValue(_ value: JSONValue, name: String, source: String) throws(SettingsError) -> String {
        switch value {
        case .number(let text): return text
        case .string(let text): return text
        case .array(let items):
            var parts: [String] = []
            for item in items {
                switch item {
                case .number(let text), .string(let text): parts.append(text)
                default: throw SettingsError("\(source): list items must be strings or numbers")
                }
            }
            return parts.joined(separator: ",")
        default: throw SettingsError("\(source): expected a number, string or list")
        }
    }
}

extension String {
    func replacingUnderscores() -> String {
        String(unicodeScalars.map { $0 == "_" ? "-" : Character($0) })
    }
}
