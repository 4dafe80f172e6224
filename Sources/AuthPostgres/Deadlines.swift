import Foundation

/// The time limits of the store's calls: each call registers what to do if
/// it is still running at its deadline, and removes that when it ends, as
/// nearly every call does long before.
///
/// One thread checks the registered deadlines every `resolution` while
/// there are any, so a limit fires up to that much late. A dispatch timer
/// per call did the same exactly on time, but arming and disarming a few
/// thousand timers a second kept Dispatch's manager thread busy for a
/// tenth of the daemon's time under load.
final class Deadlines: @unchecked Sendable {
    typealias Registration = Int

    /// Every store in the process shares it.
    static let shared = Deadlines(resolution: .milliseconds(20))

    private let resolution: Duration
    private let condition = NSCondition()
    private var actions: [Registration: (deadline: ContinuousClock.Instant, action: @Sendable () -> Void)] = [:]
    private var lastRegistration: Registration = 0

    init(resolution: Duration) {
        self.resolution = resolution
        let thread = Thread { [self] in run() }
        thread.name = "authd.deadlines"
        thread.start()
    }

    /// Runs `action` once `limit` has passed, unless `remove` comes first.
    func add(after limit: Duration, _ action: @escaping @Sendable () -> Void) -> Registration {
        let deadline = ContinuousClock.now + limit
        condition.lock()
        defer { condition.unlock() }
        lastRegistration += 1
        actions[lastRegistration] = (deadline, action)
        if actions.count == 1 { condition.signal() }
        return lastRegistration
    }

    /// The call ended in time: its action never runs.
    func remove(_ registration: Registration) {
        condition.lock()
        actions[registration] = nil
        condition.unlock()
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The thread lives as long as the process.
    private func run() {
        while true {
            condition.lock()
            while actions.isEmpty { condition.wait() }
            condition.unlock()
            Thread.sleep(forTimeInterval: seconds(resolution))
            let now = ContinuousClock.now
            condition.lock()
            let due = actions.filter { $0.value.deadline <= now }
            for registration in due.keys { actions[registration] = nil }
            condition.unlock()
            for (_, entry) in due.sorted(by: { $0.key < $1.key }) { entry.action() }
        }
    }
}
