import AuthCore
import AuthCrypto

/// `keys.jwks`, `sys.health`, `stats` and `sys.metrics`.
extension AuthService {
    // MARK: keys.jwks

    func jwks(_ context: CallContext) {
        let settings = self.settings
        let keys = keys.publicJWKs(now: clock(), retention: settings.accessTTL + settings.clockLeeway)
        context.respond(.success(.object(["keys": .array(keys)])))
    }

    // MARK: sys.health, stats

    /// `degraded`, with the age of the last confirmed sync, while a daemon
    /// on a shared database has not caught up for more than three seconds
    /// (its feed reads at least once a second, and at once when woken), or
    /// for longer than `max_staleness` (token checks are refused): cut off,
    /// or catching up.
    func health(_ context: CallContext) {
        var result: JSONObject = [
            "status": .string("ok"), "version": .string(AuthService.version), "uptime_s": .int(clock() - startedAt),
        ]
        if let age = store.secondsSinceSync, age > min(3, Double(settings.maxStaleness)) {
            result["status"] = .string("degraded")
            // Infinite: a write this daemon committed is not in its view yet.
            if age.isFinite { result["last_sync_age_s"] = .int(Int64(age)) }
            result["max_staleness_s"] = .int(settings.maxStaleness)
        }
        context.respond(.success(.object(result)))
    }

    func statsResult(_ context: CallContext) {
        let counts = store.view.counts
        context.respond(
            .success(
                .object([
                    "uptime_s": .int(clock() - startedAt), "methods": stats.snapshot(),
                    "queues": .object([
                        "hash": .object(["depth": .int(hashQueue.depth), "capacity": .int(hashQueue.capacity)]),
                        "store": .object(["depth": .int(storeQueue.depth), "capacity": .int(storeQueue.capacity)]),
                    ]),
                    "users": .int(counts.users), "live_sessions": .int(counts.sessions),
                    "in_flight": .int(inFlight),
                ])))
    }

    // MARK: sys.metrics

    /// `stats`' facts in the Prometheus text format, for node_exporter's
    /// textfile collector. Counts come from the in-memory view, as `stats`'
    /// do: nothing here waits on the store.
    func metrics(_ context: CallContext) {
        let counts = store.view.counts
        let report = MetricsReport(
            version: AuthService.version, startTime: startedAt, methods: stats.figures(),
            knownMethods: RPCMethod.allCases.map(\.rawValue),
            queues: [
                .init(name: "hash", depth: hashQueue.depth, capacity: hashQueue.capacity),
                .init(name: "store", depth: storeQueue.depth, capacity: storeQueue.capacity),
            ],
            users: counts.users, liveSessions: counts.sessions, inFlight: inFlight)
        context.respond(
            .success(.object(["content_type": .string(PrometheusText.contentType), "text": .string(report.text)])))
    }
}
