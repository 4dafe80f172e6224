import AuthCore

/// Per-method counters and latencies for `stats` and `sys.metrics`. Each
/// call costs one dictionary lookup and a few array increments, and memory
/// is fixed per method: latencies go into log-spaced buckets (about 9 %
/// wide, for `stats`' percentiles) and into the fixed buckets of the
/// Prometheus histogram; answers are counted per outcome (`ok`, or the
/// error reason) in an array indexed by the reason's place in `AuthError.Reason`.
public final class MethodStats: @unchecked Sendable {
    private struct Entry {
        var count = 0
        var sumMicroseconds = 0
        var buckets = [Int](repeating: 0, count: MethodStats.bucketCount)
        /// Non-cumulative; the last one is past every bound (`+Inf`).
        var histogram = [Int](repeating: 0, count: MethodStats.histogramBounds.count + 1)
        /// Index 0 is `ok`; index i + 1 is `AuthError.Reason.allCases[i]`.
        var outcomes = [Int](repeating: 0, count: MethodStats.outcomeCount)
    }

    /// What `sys.metrics` reports of one method.
    public struct Figures: Sendable {
        public var method: String
        public var count: Int
        public var sumMicroseconds: Int
        /// Calls per histogram bucket (non-cumulative), the last past every
        /// bound of `MethodStats.histogramBounds`.
        public var histogram: [Int]
        /// Calls per outcome (`ok` or a reason), in `AuthError.Reason`'s order
        /// after `ok`; outcomes never seen are left out.
        public var outcomes: [(outcome: String, count: Int)]

        /// No call yet: a method the exposition lists before it is first called.
        public init(method: String) {
            self.method = method
            count = 0
            sumMicroseconds = 0
            histogram = [Int](repeating: 0, count: MethodStats.histogramBounds.count + 1)
            outcomes = []
        }
    }

    static let bucketsPerDoubling = 8
    static let bucketCount = 40 * bucketsPerDoubling
    /// The Prometheus histogram's upper bounds in microseconds (`le`, in
    /// seconds on the wire): from a cached token check (tens of µs) to a
    /// queued bcrypt login (hundreds of ms) and a stalled database (seconds).
    public static let histogramBounds = [
        50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000,
    ]
    static let outcomeCount = AuthError.Reason.allCases.count + 1

    private let lock = ServiceLock()
    private var entries: [String: Entry] = [:]

    public init() {}

    /// One answered call; `failure` is the reason of an error answer, nil
    /// for a result.
    public func record(method: String, microseconds: Int, failure: AuthError.Reason?) {
        let bucket = MethodStats.bucket(for: microseconds)
        let histogramBucket = MethodStats.histogramBucket(for: microseconds)
        let outcome = failure.map { MethodStats.outcomeIndex(of: $0) } ?? 0
        lock.withLock {
            // One lookup, the entry changed in place.
            Self.count(
                &entries[method, default: Entry()], microseconds: microseconds, bucket: bucket,
                histogramBucket: histogramBucket, outcome: outcome)
        }
    }

    private static func count(
        _ entry: inout Entry, microseconds: Int, bucket: Int, histogramBucket: Int, outcome: Int
    ) {
        entry.count += 1
        entry.sumMicroseconds &+= max(0, microseconds)
        entry.buckets[bucket] += 1
        entry.histogram[histogramBucket] += 1
        entry.outcomes[outcome] += 1
    }

    /// `stats`' `methods`: count, errors and two percentiles per method.
    public func snapshot() -> JSONValue {
        let copy = lock.withLock { entries }
        var methods = JSONObject()
        for name in copy.keys.sorted() {
            let entry = copy[name]!
            methods[name] = .object([
                "count": .int(entry.count), "errors": .int(entry.count - entry.outcomes[0]),
                "p50_us": .int(MethodStats.percentile(0.50, entry)),
                "p99_us": .int(MethodStats.percentile(0.99, entry)),
            ])
        }
        return .object(methods)
    }

    /// `sys.metrics`' figures of every method called so far, by name.
    public func figures() -> [Figures] {
        let copy = lock.withLock { entries }
        return copy.keys.sorted().map { name in
            let entry = copy[name]!
            var figures = Figures(method: name)
            figures.count = entry.count
            figures.sumMicroseconds = entry.sumMicroseconds
            figures.histogram = entry.histogram
            figures.outcomes = entry.outcomes.indices.compactMap { index in
                entry.outcomes[index] == 0 ? nil : (MethodStats.outcomeName(index), entry.outcomes[index])
            }
            return figures
        }
    }

    /// The outcome of a result, as `authd_requests_total` labels it.
    public static let okOutcome = "ok"

    static func outcomeIndex(of reason: AuthError.Reason) -> Int {
        // 26 cases: a scan on failures only, cheaper than hashing the name.
        AuthError.Reason.allCases.firstIndex(of: reason)! + 1
    }

    static func outcomeName(_ index: Int) -> String {
        index == 0 ? okOutcome : AuthError.Reason.allCases[index - 1].rawValue
    }

    /// The first histogram bucket whose bound is at least `microseconds`.
    static func histogramBucket(for microseconds: Int) -> Int {
        var index = 0
        while index < histogramBounds.count && histogramBounds[index] < microseconds { index += 1 }
        return index
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
