/// Writes a backup of this daemon's state (`sys.backup`): a port, because
/// where the state is and how it is copied is the store's and the
/// daemon's business. A store shared by several hosts has none (its
/// backup is the database server's own: `pg_dump`).
public protocol StateBackupWriter: Sendable {
    /// Writes one backup off the caller's thread (it takes seconds for a
    /// large database) and calls `done` with it, once.
    func writeBackup(now: Int64, _ done: @escaping @Sendable (Result<StateBackup, StateBackupFailure>) -> Void)
}

public enum StateBackupFailure: Error, Sendable, Equatable {
    /// Another backup is being written: one at a time.
    case inProgress
    /// The daemon is stopping: the copy was abandoned and removed.
    case cancelled
    /// The copy could not be made (disk full, permissions); nothing is left
    /// of it. For the log only.
    case failed(String)
}
