import AuthCore
import Testing

@testable import AuthServiceCore

@Suite struct MetricsReportTests {
    static func report(_ stats: MethodStats) -> MetricsReport {
        MetricsReport(
            version: "1.2.3", startTime: 1_700_000_000, methods: stats.figures(),
            knownMethods: ["auth.login", "sys.health"],
            queues: [.init(name: "hash", depth: 2, capacity: 1024), .init(name: "store", depth: 0, capacity: 512)],
            users: 7, liveSessions: 3, inFlight: 1)
    }

    static func samples(_ text: String, _ prefix: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix + " ") || $0.hasPrefix(prefix + "{") }
    }

    @Test func everyFamilyIsTypedOnceInAFixedOrder() {
        let text = MetricsReportTests.report(MethodStats()).text
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map(String.init)
        #expect(
            types == [
                "# TYPE authd_build_info gauge", "# TYPE authd_start_time_seconds gauge",
                "# TYPE authd_requests_total counter", "# TYPE authd_request_duration_seconds histogram",
                "# TYPE authd_requests_in_flight gauge", "# TYPE authd_queue_depth gauge",
                "# TYPE authd_queue_capacity gauge", "# TYPE authd_users gauge", "# TYPE authd_live_sessions gauge",
            ])
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.count == types.count)
        #expect(text.hasSuffix("\n"))
        #expect(MetricsReportTests.samples(text, "authd_build_info") == [#"authd_build_info{version="1.2.3"} 1"#])
        #expect(MetricsReportTests.samples(text, "authd_start_time_seconds") == ["authd_start_time_seconds 1700000000"])
        #expect(
            MetricsReportTests.samples(text, "authd_queue_depth") == [
                #"authd_queue_depth{queue="hash"} 2"#, #"authd_queue_depth{queue="store"} 0"#,
            ])
        #expect(
            MetricsReportTests.samples(text, "authd_queue_capacity") == [
                #"authd_queue_capacity{queue="hash"} 1024"#, #"authd_queue_capacity{queue="store"} 512"#,
            ])
        #expect(MetricsReportTests.samples(text, "authd_users") == ["authd_users 7"])
        #expect(MetricsReportTests.samples(text, "authd_live_sessions") == ["authd_live_sessions 3"])
        #expect(MetricsReportTests.samples(text, "authd_requests_in_flight") == ["authd_requests_in_flight 1"])
    }

    /// Known methods are listed before their first call (ok at 0, an empty
    /// histogram); a called method adds the outcomes it had.
    @Test func methodsAreListedFromTheStartAndCountedPerOutcome() {
        let stats = MethodStats()
        stats.record(method: "auth.login", microseconds: 200_000, failure: .invalidCredentials)
        stats.record(method: "(unknown)", microseconds: 10, failure: .methodNotFound)
        let text = MetricsReportTests.report(stats).text
        #expect(
            MetricsReportTests.samples(text, "authd_requests_total") == [
                #"authd_requests_total{method="(unknown)",outcome="ok"} 0"#,
                #"authd_requests_total{method="(unknown)",outcome="method_not_found"} 1"#,
                #"authd_requests_total{method="auth.login",outcome="ok"} 0"#,
                #"authd_requests_total{method="auth.login",outcome="invalid_credentials"} 1"#,
                #"authd_requests_total{method="sys.health",outcome="ok"} 0"#,
            ])
        #expect(
            MetricsReportTests.samples(text, "authd_request_duration_seconds_count") == [
                #"authd_request_duration_seconds_count{method="(unknown)"} 1"#,
                #"authd_request_duration_seconds_count{method="auth.login"} 1"#,
                #"authd_request_duration_seconds_count{method="sys.health"} 0"#,
            ])
        let loginBuckets = MetricsReportTests.samples(text, "authd_request_duration_seconds_bucket")
            .filter { $0.contains(#"method="auth.login""#) }
        #expect(loginBuckets.count == MethodStats.histogramBounds.count + 1)
        #expect(loginBuckets.contains(#"authd_request_duration_seconds_bucket{method="auth.login",le="0.1"} 0"#))
        #expect(loginBuckets.contains(#"authd_request_duration_seconds_bucket{method="auth.login",le="0.25"} 1"#))
        #expect(loginBuckets.last == #"authd_request_duration_seconds_bucket{method="auth.login",le="+Inf"} 1"#)
        #expect(
            MetricsReportTests.samples(text, "authd_request_duration_seconds_sum").contains(
                #"authd_request_duration_seconds_sum{method="auth.login"} 0.2"#))
    }
}
