import AuthCore
import Foundation
import Testing

@testable import AuthServiceCore

@Suite struct MethodStatsTests {
    /// The buckets follow log2 without libm: the same bucket as
    /// floor(log2(µs) × 8), and a percentile is its bucket's upper bound.
    @Test func bucketsAreEighthsOfADoubling() {
        for microseconds in [2, 3, 7, 8, 9, 100, 1_000, 65_535, 65_536, 1_000_000, 123_456_789] {
            let expected = Int((log2(Double(microseconds)) * 8).rounded(.down))
            #expect(MethodStats.bucket(for: microseconds) == expected, "\(microseconds)")
            let bound = MethodStats.upperBound(ofBucket: expected)
            #expect(abs(bound - pow(2, Double(expected + 1) / 8)) < bound * 1e-9, "\(microseconds)")
            #expect(Double(microseconds) < bound)
        }
        #expect(MethodStats.bucket(for: 0) == 0)
        #expect(MethodStats.bucket(for: Int.max) == MethodStats.bucketCount - 1)
    }

    @Test func percentilesComeFromTheRecordedLatencies() {
        let stats = MethodStats()
        for _ in 0..<99 { stats.record(method: "m", microseconds: 100, failed: false) }
        stats.record(method: "m", microseconds: 10_000, failed: true)
        let entry = stats.snapshot().objectValue?["m"]?.objectValue
        #expect(entry?["count"] == .int(100))
        #expect(entry?["errors"] == .int(1))
        #expect(
            entry?["p50_us"] == .int(Int(MethodStats.upperBound(ofBucket: MethodStats.bucket(for: 100)).rounded(.up))))
        #expect(
            entry?["p99_us"] == .int(Int(MethodStats.upperBound(ofBucket: MethodStats.bucket(for: 100)).rounded(.up))))
    }
}
