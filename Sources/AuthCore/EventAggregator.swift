/// Keeps one peer from flooding the security log: past `threshold` events
/// of one name from one peer uid in a window of `window` seconds, those
/// events are counted instead of logged, and one summary per window stands
/// for them (`AUTHD_COUNT`). Each (peer, name) pair has its own budget, so
/// one peer's noise never hides another peer's events, and some names are
/// never aggregated. Pure: the caller passes the time and logs what it says.
public struct EventAggregator: Sendable {
    public var threshold: Int
    public var window: Int64
    /// Logged one by one whatever the rate: reuse and lockouts are attacks
    /// worth a line each (a lock is logged once per locked key and window,
    /// see `LoginThrottle.isFirstRefusal`); successful logins and sessions
    /// opened (bounded by the hashing rate) and admin changes to users are
    /// the audit trail, which a flood of one peer's noise must not thin out.
    public static let neverAggregated: Set<SecurityEvent.Name> = [
        .tokenReuse, .loginLock, .loginSuccess, .tokenCreated, .userCreated, .userUpdated, .userDeleted,
    ]

    private struct Key: Hashable {
        let peerUID: UInt32
        let name: SecurityEvent.Name
    }

    private struct Budget {
        var windowStart: Int64
        var count = 0
        /// Events counted but not logged in this window.
        var suppressed = 0
        /// The latest suppressed event, the model for the summary.
        var last: SecurityEvent?
        /// The previous window went over the threshold: stay aggregated
        /// until a window stays under it.
        var aggregating = false
    }

    private var budgets: [Key: Budget] = [:]

    public init(threshold: Int = 50, window: Int64 = 10) {
        self.threshold = threshold
        self.window = window
    }

    /// What to write now for `event` at `now`: the event itself, nothing
    /// (it was counted), and any summaries of windows that have ended.
    public mutating func admit(_ event: SecurityEvent, now: Int64) -> [SecurityEvent] {
        guard let peerUID = event.peerUID, !EventAggregator.neverAggregated.contains(event.name) else {
            return [event]
        }
        let key = Key(peerUID: peerUID, name: event.name)
        var output: [SecurityEvent] = []
        var budget = budgets[key] ?? Budget(windowStart: now)
        if now >= budget.windowStart.saturatingAdd(window) {
            if let summary = Self.summary(of: budget) { output.append(summary) }
            budget = Budget(windowStart: now, aggregating: budget.count > threshold)
        }
        budget.count += 1
        if budget.aggregating || budget.count > threshold {
            budget.suppressed += 1
            budget.last = event
        } else {
            output.append(event)
        }
        budgets[key] = budget
        return output
    }

    /// Summaries of every window that has ended by `now` (call it every
    /// `window` seconds, and at shutdown with `force`), and forgets quiet
    /// pairs.
    public mutating func flush(now: Int64, force: Bool = false) -> [SecurityEvent] {
        var output: [SecurityEvent] = []
        for (key, budget) in budgets where force || now >= budget.windowStart.saturatingAdd(window) {
            if let summary = Self.summary(of: budget) { output.append(summary) }
            if budget.count > threshold && !force {
                budgets[key] = Budget(windowStart: now, aggregating: true)
            } else {
                budgets.removeValue(forKey: key)
            }
        }
        return output
    }

    private static func summary(of budget: Budget) -> SecurityEvent? {
        guard budget.suppressed > 0, var summary = budget.last else { return nil }
        summary.message =
            "\(budget.suppressed) more \(summary.name.rawValue) events from this peer in this window (aggregated)"
        summary.count = budget.suppressed
        return summary
    }
}
