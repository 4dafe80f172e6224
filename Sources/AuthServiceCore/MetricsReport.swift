import AuthCore

/// What `sys.metrics` reports, the facts of `stats` as Prometheus metrics:
/// answers per method and outcome, latency histograms, queue depths, users
/// and live sessions. Every method of the protocol is listed from the start
/// (with `outcome="ok"` at 0), so that a rate over a series that appears
/// later does not miss its first calls.
public struct MetricsReport: Sendable {
    /// One queue of jobs (`hash`, `store`).
    public struct Queue: Sendable {
        public var name: String
        public var depth: Int
        public var capacity: Int

        public init(name: String, depth: Int, capacity: Int) {
            self.name = name
            self.depth = depth
            self.capacity = capacity
        }
    }

    public var version: String
    /// Wall seconds since the epoch when the service started.
    public var startTime: Int64
    /// Methods called so far (`MethodStats.figures()`).
    public var methods: [MethodStats.Figures]
    /// Methods listed even before their first call.
    public var knownMethods: [String]
    public var queues: [Queue]
    public var users: Int
    public var liveSessions: Int
    public var inFlight: Int

    public init(
        version: String, startTime: Int64, methods: [MethodStats.Figures], knownMethods: [String], queues: [Queue],
        users: Int, liveSessions: Int, inFlight: Int
    ) {
        self.version = version
        self.startTime = startTime
        self.methods = methods
        self.knownMethods = knownMethods
        self.queues = queues
        self.users = users
        self.liveSessions = liveSessions
        self.inFlight = inFlight
    }

    /// The exposition, families in a fixed order and methods by name.
    public var text: String {
        let methods = allMethods
        var text = PrometheusText()
        text.gauge(
            "authd_build_info", help: "The running authd's version (always 1).",
            [([.init("version", version)], 1)])
        text.gauge(
            "authd_start_time_seconds", help: "When the daemon started, in seconds since the epoch.",
            [([], Int(startTime))])
        text.counter(
            "authd_requests_total",
            help: "Requests answered, by method and outcome (ok, or the error reason).",
            methods.flatMap { figures in
                MetricsReport.outcomesWithOK(figures).map {
                    ([.init("method", figures.method), .init("outcome", $0.outcome)], $0.count)
                }
            })
        text.durationHistogram(
            "authd_request_duration_seconds", help: "Time from a request's arrival to its answer, by method.",
            methods.map {
                PrometheusText.HistogramSeries(
                    labels: [.init("method", $0.method)], boundsMicroseconds: MethodStats.histogramBounds,
                    counts: $0.histogram, sumMicroseconds: $0.sumMicroseconds)
            })
        text.gauge("authd_requests_in_flight", help: "Requests taken and not yet answered.", [([], inFlight)])
        text.gauge(
            "authd_queue_depth", help: "Jobs waiting in a queue (hash: password hashing, store: database).",
            queues.map { ([.init("queue", $0.name)], $0.depth) })
        text.gauge(
            "authd_queue_capacity", help: "Jobs a queue holds before it answers busy.",
            queues.map { ([.init("queue", $0.name)], $0.capacity) })
        text.gauge("authd_users", help: "User accounts, active or not.", [([], users)])
        text.gauge("authd_live_sessions", help: "Sessions neither revoked nor expired.", [([], liveSessions)])
        return text.text
    }

    /// The called methods and the known ones not called yet, by name.
    private var allMethods: [MethodStats.Figures] {
        var byName: [String: MethodStats.Figures] = [:]
        for name in knownMethods { byName[name] = MethodStats.Figures(method: name) }
        for figures in methods { byName[figures.method] = figures }
        return byName.keys.sorted().map { byName[$0]! }
    }

    /// A method's outcomes, `ok` first even when no call succeeded.
    private static func outcomesWithOK(_ figures: MethodStats.Figures) -> [(outcome: String, count: Int)] {
        if figures.outcomes.first?.outcome == MethodStats.okOutcome { return figures.outcomes }
        return [(MethodStats.okOutcome, 0)] + figures.outcomes
    }
}
