/// Every setting of the daemon, with the contract's defaults.
public struct Settings: Sendable, Equatable {
    public var bcryptCost = 12
    public var accessTTL: Int64 = 900
    public var refreshTTL: Int64 = 604_800
    public var issuer = "authd"
    public var audience = "authd-clients"
    public var algorithm = "HS256"
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

    public init(cores: Int) {
        workers = max(1, cores)
    }

    public var tokenPolicy: TokenPolicy {
        TokenPolicy(issuer: issuer, audience: audience, leeway: clockLeeway)
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

/// Resolves settings from, highest first, flags, `AUTHD_*` environment
/// variables, the config file (a JSON object with snake_case keys) and the
/// defaults. Pure: the caller reads the environment and the file.
public enum SettingsResolver {
    /// The snake_case names of every setting, as config keys; flags are the
    /// same names in kebab-case and variables `AUTHD_` + upper case.
    public static let names = [
        "bcrypt_cost", "access_ttl", "refresh_ttl", "issuer", "audience", "algorithm",
        "login_max_failures", "client_max_failures", "login_window", "sweep_interval", "admin_uids",
        "admin_groups", "workers", "max_queue", "clock_leeway", "max_line_bytes", "max_in_flight",
        "shutdown_timeout", "idle_timeout",
    ]

    public static func environmentName(_ name: String) -> String { "AUTHD_" + name.uppercased() }
    public static func flagName(_ name: String) -> String { name.replacingUnderscores() }

    public static func resolve(
        flags: [String: String], environment: [String: String], file: JSONObject?, cores: Int
    ) throws(SettingsError) -> Settings {
        if let file {
            for key in file.keys where !names.contains(key) {
                throw SettingsError("config file: unknown setting '\(key)'")
            }
        }
        var settings = Settings(cores: cores)
        for name in names {
            let raw: (value: String, source: String)?
            if let flag = flags[name] {
                raw = (flag, "--\(flagName(name))")
            } else if let env = environment[environmentName(name)] {
                raw = (env, environmentName(name))
            } else if let value = file?[name] {
                raw = (try fileValue(value, name: name), "config file '\(name)'")
            } else {
                raw = nil
            }
            if let raw { try apply(name: name, value: raw.value, source: raw.source, cores: cores, to: &settings) }
        }
        return settings
    }

    private static func fileValue(_ value: JSONValue, name: String) throws(SettingsError) -> String {
        switch value {
        case .number(let text): return text
        case .string(let text): return text
        case .array(let items):
            var parts: [String] = []
            for item in items {
                switch item {
                case .number(let text), .string(let text): parts.append(text)
                default: throw SettingsError("config file '\(name)': list items must be strings or numbers")
                }
            }
            return parts.joined(separator: ",")
        default: throw SettingsError("config file '\(name)': expected a number, string or list")
        }
    }

    private static func apply(name: String, value: String, source: String, cores: Int, to s: inout Settings)
        throws(SettingsError)
    {
        func int(_ range: ClosedRange<Int64>) throws(SettingsError) -> Int64 {
            guard let parsed = Int64(value.trimmingWhitespace()), range.contains(parsed) else {
                throw SettingsError(
                    "\(source): \(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return parsed
        }
        func text() throws(SettingsError) -> String {
            let trimmed = value.trimmingWhitespace()
            guard !trimmed.isEmpty, trimmed.utf8.count <= 256 else {
                throw SettingsError("\(source): \(name) must be a non-empty string of at most 256 bytes")
            }
            return trimmed
        }
        func list() -> [String] {
            value.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        switch name {
        case "bcrypt_cost": s.bcryptCost = Int(try int(10...31))
        case "access_ttl": s.accessTTL = try int(1...86_400)
        case "refresh_ttl": s.refreshTTL = try int(1...31_536_000)
        case "issuer": s.issuer = try text()
        case "audience": s.audience = try text()
        case "algorithm":
            let algorithm = try text()
            guard algorithm == "HS256" || algorithm == "EdDSA" else {
                throw SettingsError("\(source): algorithm must be HS256 or EdDSA")
            }
            s.algorithm = algorithm
        case "login_max_failures": s.loginMaxFailures = Int(try int(1...1_000_000))
        case "client_max_failures": s.clientMaxFailures = Int(try int(1...1_000_000))
        case "login_window": s.loginWindow = try int(1...604_800)
        case "sweep_interval": s.sweepInterval = try int(1...604_800)
        case "admin_uids":
            var uids: [UInt32] = []
            for item in list() {
                guard let uid = UInt32(item) else {
                    throw SettingsError("\(source): admin_uids must be comma-separated numeric uids")
                }
                uids.append(uid)
            }
            s.adminUIDs = uids
        case "admin_groups": s.adminGroups = list()
        case "workers":
            // 0 means one per core, the default.
            let workers = Int(try int(0...256))
            s.workers = workers == 0 ? max(1, cores) : workers
        case "max_queue": s.maxQueue = Int(try int(1...1_000_000))
        case "clock_leeway": s.clockLeeway = try int(0...300)
        case "max_line_bytes": s.maxLineBytes = Int(try int(1024...16_777_216))
        case "max_in_flight": s.maxInFlight = Int(try int(1...65_536))
        case "shutdown_timeout": s.shutdownTimeout = try int(1...600)
        case "idle_timeout": s.idleTimeout = try int(1...86_400)
        default: break
        }
    }
}

extension String {
    func replacingUnderscores() -> String {
        String(unicodeScalars.map { $0 == "_" ? "-" : Character($0) })
    }
}
