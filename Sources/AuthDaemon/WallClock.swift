#if canImport(Glibc)
    import Glibc
#endif

/// The wall clock, in whole Unix seconds: token times, session expiry,
/// failure windows. It can jump (NTP, an operator); durations use
/// `MonotonicClock`.
public enum WallClock {
    public static func unixSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }
}
