import AuthCore
import Testing

@testable import AuthServiceCore

@Suite struct PrometheusTextTests {
    @Test func aFamilyStartsWithHelpAndType() {
        var text = PrometheusText()
        text.counter("x_total", help: "Things done.", [([.init("kind", "a")], 3), ([], 0)])
        text.gauge("y", help: "A level.", [([], -2)])
        #expect(
            text.text == """
                # HELP x_total Things done.
                # TYPE x_total counter
                x_total{kind="a"} 3
                x_total 0
                # HELP y A level.
                # TYPE y gauge
                y -2

                """)
    }

    /// Label values escape backslash, quote and line feed; HELP texts
    /// escape backslash and line feed, and leave quotes alone.
    @Test func labelValuesAndHelpAreEscaped() {
        var text = PrometheusText()
        text.gauge(
            "g", help: "say \"hi\"\\\nthere", [([.init("v", "a\\b\"c\nd"), .init("w", "é ok")], 1)])
        let lines = text.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == #"# HELP g say "hi"\\\nthere"#)
        #expect(lines[2] == #"g{v="a\\b\"c\nd",w="é ok"} 1"#)
        #expect(lines.count == 4 && lines[3].isEmpty)
    }

    /// Buckets are cumulative, `le` ascending in seconds and then `+Inf`;
    /// `_count` equals the `+Inf` bucket and `_sum` is in seconds.
    @Test func aHistogramIsCumulativeWithInfSumAndCount() {
        var text = PrometheusText()
        text.durationHistogram(
            "d_seconds", help: "Durations.",
            [
                .init(
                    labels: [.init("method", "m")], boundsMicroseconds: [250, 1_000_000, 2_500_000],
                    counts: [1, 0, 2, 4], sumMicroseconds: 12_500_250)
            ])
        #expect(
            text.text == """
                # HELP d_seconds Durations.
                # TYPE d_seconds histogram
                d_seconds_bucket{method="m",le="0.00025"} 1
                d_seconds_bucket{method="m",le="1"} 1
                d_seconds_bucket{method="m",le="2.5"} 3
                d_seconds_bucket{method="m",le="+Inf"} 7
                d_seconds_sum{method="m"} 12.50025
                d_seconds_count{method="m"} 7

                """)
    }

    @Test func microsecondsAreWrittenAsExactSeconds() {
        #expect(PrometheusText.seconds(microseconds: 0) == "0")
        #expect(PrometheusText.seconds(microseconds: 1) == "0.000001")
        #expect(PrometheusText.seconds(microseconds: 50) == "0.00005")
        #expect(PrometheusText.seconds(microseconds: 1_000_000) == "1")
        #expect(PrometheusText.seconds(microseconds: 10_000_000) == "10")
        #expect(PrometheusText.seconds(microseconds: 123_456_789) == "123.456789")
        #expect(PrometheusText.seconds(microseconds: -1_500_000) == "-1.5")
    }
}
