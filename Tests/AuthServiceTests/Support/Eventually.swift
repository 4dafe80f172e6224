import Foundation

/// Waits (up to 10 s) until `condition` holds: a feed, a server's
/// statistics, a lock taken by another connection are asynchronous, and how
/// fast they are belongs in BENCHMARKS.md.
func eventually(_ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}
