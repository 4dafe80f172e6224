/// What runs once a call has been answered, after its answer is handed to
/// the connection: the place of each job the call started in a queue that
/// holds places until then (`JobQueue.holdsPlaceUntilAnswered`). A call
/// answered before any job started has nothing to run.
///
/// Guarded by the service's lock (`AuthService.lock`): the answer already
/// takes it, so a call that starts no such job pays one allocation and no
/// lock of its own.
final class CallEnding: @unchecked Sendable {
    var actions: [@Sendable () -> Void] = []
}
