import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Clocks: monotonic microseconds for latency, wall-clock Unix seconds for tokens.
public enum DispatchClock {
    @inline(__always)
    public static func microseconds() -> Int {
        Int(DispatchTime.now().uptimeNanoseconds / 1000)
    }

    public static func unixSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }
}
