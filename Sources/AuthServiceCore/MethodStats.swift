import AuthCore

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

    private let lock = ServiceLock()
    private var entries: [String: Entry] = [:]

    public init() {}

    public func record(method: String, microseconds: Int, failed: Bool) {
        let bucket = MethodStats.bucket(for: microseconds)
        lock.withLock {
            // One lookup, the entry changed in place.
            Self.count(&entries[method, default: Entry()], bucket: bucket, failed: failed)
        }
    }

    private static func count(_ entry: inout Entry, bucket: Int, failed: Bool) {
        entry.count += 1
        if failed { entry.errors += 1 }
        entry.buckets[bucket] += 1
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

    /// 2^(j/8) for j in 0...8: the bounds within one doubling (no libm).
    private static let stepBounds: [Double] = {
        let step = 1.090_507_732_665_257_7  // 2^(1/8)
        var bounds = [1.0]
        for _ in 1...bucketsPerDoubling { bounds.append(bounds.last! * step) }
        bounds[bucketsPerDoubling] = 2
        return bounds
    }()

    /// floor(log2(microseconds) × 8), clamped to the buckets.
    static func bucket(for microseconds: Int) -> Int {
        guard microseconds > 1 else { return 0 }
        let doublings = Int.bitWidth - 1 - microseconds.leadingZeroBitCount
        let fraction = Double(microseconds) / Double(1 << doublings)
        var step = 0
        while step + 1 < bucketsPerDoubling && stepBounds[step + 1] <= fraction { step += 1 }
        return min(bucketCount - 1, doublings * bucketsPerDoubling + step)
    }

    /// 2^((index + 1) / 8): the upper bound of a bucket.
    static func upperBound(ofBucket index: Int) -> Double {
        let (doublings, step) = (index + 1).quotientAndRemainder(dividingBy: bucketsPerDoubling)
        var bound = stepBounds[step]
        for _ in 0..<doublings { bound *= 2 }
        return bound
    }

    /// The upper bound of the bucket that holds the `quantile`.
    private static func percentile(_ quantile: Double, _ entry: Entry) -> Int {
        guard entry.count > 0 else { return 0 }
        let rank = Int((Double(entry.count) * quantile).rounded(.up))
        var seen = 0
        for (index, count) in entry.buckets.enumerated() {
            seen += count
            if seen >= max(rank, 1) {
                return Int(upperBound(ofBucket: index).rounded(.up))
            }
        }
        return 0
    }
}
