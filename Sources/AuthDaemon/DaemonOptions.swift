#if canImport(Glibc)
    import Glibc
#endif

/// What the command line gives the daemon (settings flags included, as raw
/// strings keyed by their snake_case names).
public struct DaemonOptions: Sendable {
    public var listenPath: String?
    public var socketMode: mode_t
    public var stateDirectory: String
    /// An explicit config file: it must exist.
    public var configPath: String?
    /// A config directory: `authd.conf` if it exists, then every
    /// `authd.conf.d/*.conf` in name order (the unit passes `/etc/authd`).
    public var configDirectory: String?
    public var settingFlags: [String: String]

    public init(
        listenPath: String?, socketMode: mode_t, stateDirectory: String, configPath: String?,
        configDirectory: String? = nil, settingFlags: [String: String]
    ) {
        self.listenPath = listenPath
        self.socketMode = socketMode
        self.stateDirectory = stateDirectory
        self.configPath = configPath
        self.configDirectory = configDirectory
        self.settingFlags = settingFlags
    }
}

/// A start-up failure with a message for the operator.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
