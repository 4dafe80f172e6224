import AuthCore
import NIOConcurrencyHelpers

/// Per-method counters and latency percentiles for `stats`, kept in
/// log-spaced buckets (about 9 % wide) so recording is O(1) and memory fixed.
public final class MethodStats: @unchecked Sendable {
    private struct Entry {
        var count = 0
        var errors = 0
        var buckets = [Int](repeating: 0, count: MethodStats.bucketCount)
    }

    static let bucketsPerDoubling = 8
    static let bucketCount = 40 * bucketsPerDoubling

    private let lock = NIOLock()
    private var entries: [String: Entry] = [:]

    public init() {}

    public func record(method: String, microseconds: Int, failed: Bool) {
        let bucket = MethodStats.bucket(for: microseconds)
        lock.withLock {
            entries[method, default: Entry()].count += 1
            if failed { entries[method]!.errors += 1 }
            entries[method]!.buckets[bucket] += 1
        }
    }

    public func snapshot() -> JSONValue {
        let copy = lock.withLock { entries }
        var methods = JSONObject()
        for name in copy.keys.sorted() {
            let entry = copy[name]!
            methods[name] = .object([
                "count": .int(entry.count), "errors": .int(entry.errors),
                "p50_us": .int(MethodStats.percentile(0.50, entry)),
                "p99_us": .int(MethodStats.percentile(0.99, entry)),
            ])
        }
        return .object(methods)
    }

    static func bucket(for microseconds: Int) -> Int {
        guard microseconds > 1 else { return 0 }
        let value = Double(microseconds)
        let index = Int(log2(value) * Double(bucketsPerDoubling))
        return min(bucketCount - 1, max(0, index))
    }

    /// The upper bound of the bucket that holds the `quantile`.
    private static func percentile(_ quantile: Double, _ entry: Entry) -> Int {
        guard entry.count > 0 else { return 0 }
        let rank = Int((Double(entry.count) * quantile).rounded(.up))
        var seen = 0
        for (index, count) in entry.buckets.enumerated() {
            seen += count
            if seen >= max(rank, 1) {
                return Int(pow(2, Double(index + 1) / Double(bucketsPerDoubling)).rounded(.up))
            }
        }
        return 0
    }
}

#if canImport(Glibc)
    import Glibc
#endif
