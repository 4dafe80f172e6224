import Dispatch

/// A clock that only moves forward, in microseconds since boot: latencies
/// and rates, never times that leave the process.
public enum MonotonicClock {
    @inline(__always)
    public static func microseconds() -> Int {
        Int(DispatchTime.now().uptimeNanoseconds / 1000)
    }
}
