/// One login (or password check) the gate admitted: its throttle keys and,
/// on a store several daemons share, the id of the place it holds there.
/// `LoginGate.finish` ends exactly this attempt's place, not another's.
struct LoginAttempt: Sendable, Equatable {
    let account: String
    let client: String
    let reservation: Int64?
}
