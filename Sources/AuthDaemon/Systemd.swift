import CSystemd

/// The daemon's side of systemd: socket activation and `sd_notify`. Both
/// are harmless no-ops when the daemon runs outside systemd.
public enum Systemd {
    /// The file descriptors passed by socket activation (`LISTEN_FDS`).
    public static func listenFileDescriptors() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }
    }

    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval systemd expects pings within, if enabled.
    public static func watchdogInterval() -> Int64? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return Int64(microseconds)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
