import AuthCore

extension AuthService {
    /// `sys.backup` (uid 0 only): an online copy of the database and the key
    /// files into the state directory, for `authctl backup` to collect. The answer says
    /// where; it carries no key. On a store with no local state (PostgreSQL)
    /// the answer is `unsupported`: that database is backed up by its server.
    func backup(_ context: CallContext) {
        // Root only: a backup holds the keys, and only root can read the
        // state directory to collect it, so no other admin (an admin uid,
        // an admin user's token) has a use for one, only the disk it takes.
        guard context.peer.uid == 0 else {
            event(.authzFail, "Backup refused: only root may ask for one", context.peer, reason: "forbidden")
            return context.fail(.forbidden)
        }
        guard let backups else {
            return context.fail(
                .unsupported(
                    "This daemon's store is a shared PostgreSQL database: back it up with pg_dump, and keep the key-encryption key with it"
                ))
        }
        backups.writeBackup(now: clock()) { [self] result in
            switch result {
            case .success(let backup):
                event(
                    .backup,
                    "Backup written to \(backup.directory): \(backup.files.count) files, \(backup.totalBytes) bytes",
                    context.peer, reason: "sys.backup")
                context.respond(.success(backup.resultJSON))
            case .failure(.inProgress):
                context.fail(.busy(retryAfter: 5))
            case .failure(.cancelled):
                context.fail(.shuttingDown)
            case .failure(.failed(let cause)):
                context.fail(.internalError("backup: \(cause)"))
            }
        }
    }
}
