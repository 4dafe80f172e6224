import AuthCore
import AuthCrypto
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Start-up's settings: the resolved settings and where each came from,
/// the config directory's files, the host's name for client keys, admin
/// groups, and the descriptor limit they need. Static: nothing here needs
/// a running daemon (`--print-config` and `authd migrate` use it too).
extension Daemon {
    static func loadSettings(options: DaemonOptions, environment: [String: String], cores: Int) throws -> Settings {
        try loadSettingsWithSources(options: options, environment: environment, cores: cores).settings
    }

    /// The settings and where each came from. The config files, in order:
    /// `--config-dir`'s `authd.conf` (if it exists) and its
    /// `authd.conf.d/*.conf` in name order, then `--config` (which must
    /// exist); each replaces the values it names. With neither flag no file
    /// is read.
    public static func loadSettingsWithSources(options: DaemonOptions, environment: [String: String], cores: Int)
        throws -> (settings: Settings, sources: [String: String])
    {
        var paths: [String] = []
        if let directory = options.configDirectory { paths = try configDirectoryFiles(directory) }
        if let path = options.configPath { paths.append(path) }
        var files: [SettingsResolver.ConfigFile] = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StartupError("cannot read the config file \(path)")
            }
            guard case .object(let object)? = try? JSONParser.parse(Array(data)) else {
                throw StartupError("the config file \(path) is not a JSON object")
            }
            files.append(SettingsResolver.ConfigFile(path: path, object: object))
        }
        do {
            var (settings, sources) = try SettingsResolver.resolve(
                flags: options.settingFlags, environment: environment, files: files, cores: cores)
            if settings.instanceName.isEmpty {
                settings.instanceName = machineName()
                sources["instance_name"] = "default (from the machine id)"
            }
            return (settings, sources)
        } catch {
            throw StartupError(error.description)
        }
    }

    /// The files of a config directory, in order. Only a missing
    /// `authd.conf` or `authd.conf.d` is skipped: a directory that is not
    /// there, cannot be read or is not a directory is an error (a typo or
    /// a permission must not start the service on defaults). A drop-in
    /// linked to `/dev/null` is masked, as systemd's are; any other that
    /// is not a regular file is an error.
    static func configDirectoryFiles(_ directory: String) throws -> [String] {
        func kind(_ path: String, following: Bool) -> mode_t? {
            var info = stat()
            let status = following ? stat(path, &info) : lstat(path, &info)
            if status != 0 {
                if errno == ENOENT { return nil }
                return S_IFMT  // an error other than absence: reported below
            }
            return info.st_mode & S_IFMT
        }
        guard kind(directory, following: true) == S_IFDIR else {
            throw StartupError("the config directory \(directory) is not a readable directory")
        }
        var paths: [String] = []
        let main = directory + "/authd.conf"
        if kind(main, following: false) != nil {
            guard kind(main, following: true) == S_IFREG else {
                throw StartupError("the config file \(main) is not a regular file")
            }
            paths.append(main)
        }
        let dropIns = directory + "/authd.conf.d"
        guard let dropInKind = kind(dropIns, following: true) else { return paths }
        guard dropInKind == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: dropIns) else {
            throw StartupError("\(dropIns) is not a readable directory")
        }
        // Byte order, as systemd sorts its drop-ins.
        let sorted = names.filter { $0.hasSuffix(".conf") && !$0.hasPrefix(".") }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in sorted {
            let path = dropIns + "/" + name
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) == "/dev/null" { continue }
            guard kind(path, following: true) == S_IFREG else {
                throw StartupError("the config file \(path) is not a regular file")
            }
            paths.append(path)
        }
        return paths
    }

    /// The default `instance_name`: derived from the machine id
    /// (`/etc/machine-id`), hashed with a label of authd's own as systemd
    /// asks of applications (the id itself is to be kept confidential);
    /// else the host name.
    static func machineName() -> String {
        if let data = FileManager.default.contents(atPath: "/etc/machine-id"),
            let id = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !id.isEmpty
        {
            let digest = Digest.sha256(Array(("authd instance name\n" + id).utf8))
            return digest.prefix(8).map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return host.isEmpty ? "localhost" : String(host.prefix(64))
    }

    static func resolveGroups(_ groups: [String]) throws -> Set<UInt32> {
        var gids = Set<UInt32>()
        for group in groups {
            if let gid = UInt32(group) {
                gids.insert(gid)
            } else if let entry = getgrnam(group) {
                gids.insert(entry.pointee.gr_gid)
            } else {
                throw StartupError("admin_groups: no group named '\(group)'")
            }
        }
        return gids
    }

    /// Raises the soft descriptor limit to the hard one (systemd leaves the
    /// soft limit at 1024 for select() users; authd uses epoll), and warns
    /// when even that cannot hold `max_connections`.
    static func raiseDescriptorLimit(for settings: Settings, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        // Files, the database and the journal need a few dozen more.
        let needed = rlim_t(settings.maxConnections + 64)
        if limit.rlim_cur < needed {
            logger.warning(
                "the descriptor limit is below max_connections; raise LimitNOFILE or lower max_connections",
                metadata: ["limit": "\(limit.rlim_cur)", "max_connections": "\(settings.maxConnections)"])
        }
    }
}
