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
        for _ in 0..<99 { stats.record(method: "m", microseconds: 100, failure: nil) }
        stats.record(method: "m", microseconds: 10_000, failure: .busy)
        let entry = stats.snapshot().objectValue?["m"]?.objectValue
        #expect(entry?["count"] == .int(100))
        #expect(entry?["errors"] == .int(1))
        #expect(
            entry?["p50_us"] == .int(Int(MethodStats.upperBound(ofBucket: MethodStats.bucket(for: 100)).rounded(.up))))
        #expect(
            entry?["p99_us"] == .int(Int(MethodStats.upperBound(ofBucket: MethodStats.bucket(for: 100)).rounded(.up))))
    }

    /// Each answer counts under its outcome, in the histogram bucket whose
    /// bound is the first at or above its latency (`le` is inclusive).
    @Test func figuresCountOutcomesAndHistogramBuckets() throws {
        let stats = MethodStats()
        stats.record(method: "auth.login", microseconds: 50, failure: nil)
        stats.record(method: "auth.login", microseconds: 51, failure: nil)
        stats.record(method: "auth.login", microseconds: 200_000, failure: .invalidCredentials)
        stats.record(method: "auth.login", microseconds: 60_000_000, failure: .invalidCredentials)
        stats.record(method: "auth.login", microseconds: 3, failure: .rateLimited)
        stats.record(method: "token.verify", microseconds: 0, failure: .unavailable)
        let figures = stats.figures()
        #expect(figures.map(\.method) == ["auth.login", "token.verify"])
        let login = figures[0]
        #expect(login.count == 5)
        #expect(login.sumMicroseconds == 50 + 51 + 200_000 + 60_000_000 + 3)
        // ok first, then the reasons in the protocol's order; unseen ones left out.
        #expect(login.outcomes.map(\.outcome) == ["ok", "invalid_credentials", "rate_limited"])
        #expect(login.outcomes.map(\.count) == [2, 2, 1])
        let bounds = MethodStats.histogramBounds
        var expected = [Int](repeating: 0, count: bounds.count + 1)
        expected[0] = 2  // 3 µs and 50 µs: le 0.00005
        expected[1] = 1  // 51 µs: le 0.0001
        expected[try #require(bounds.firstIndex(of: 250_000))] = 1
        expected[bounds.count] = 1  // past 10 s: only +Inf
        #expect(login.histogram == expected)
        #expect(figures[1].outcomes.map(\.outcome) == ["unavailable"])
        // stats' errors are every answer but ok.
        #expect(stats.snapshot().objectValue?["auth.login"]?.objectValue?["errors"] == .int(3))
    }

    @Test func everyReasonHasItsOwnOutcome() {
        let names = AuthError.Reason.allCases.map { MethodStats.outcomeName(MethodStats.outcomeIndex(of: $0)) }
        #expect(names == AuthError.Reason.allCases.map(\.rawValue))
        #expect(MethodStats.outcomeName(0) == "ok")
        #expect(MethodStats.histogramBounds == MethodStats.histogramBounds.sorted())
    }
}
