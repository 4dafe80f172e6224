import AuthCore

extension AuthService {
    /// `sys.backup` (uid 0 only, `RPCMethod.requiresRoot`): an online copy of the database and the key
    /// files into the state directory, for `authctl backup` to collect. The answer says
    /// where; it carries no key. On a store with no local state (PostgreSQL)
    /// the answer is `unsupported`: that database is backed up by its server.
    func backup(_ context: CallContext) {
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
