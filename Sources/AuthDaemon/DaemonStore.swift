import AuthCore
import AuthServiceCore
import AuthStore
import Dispatch
import Foundation
import Logging

#if canImport(AuthPostgres)
    import AuthPostgres
#endif

/// The store the daemon chose at start, with what the daemon itself does
/// with it beyond the service's port: sweep, check, close.
enum DaemonStore {
    /// SQLite in the state directory: one host.
    case sqlite(AuthDatabase)
    #if canImport(AuthPostgres)
        /// PostgreSQL shared by several daemons.
        case postgres(PostgresStore)
    #endif

    struct SweepResult {
        var sessions = 0
        var failureCounters = 0
    }

    /// Opens the store `settings` name: PostgreSQL when `database_url` is
    /// set (its password from the `database-password` credential, else the
    /// URL), else SQLite in `stateDirectory`.
    static func open(
        settings: Settings, stateDirectory: String, credentialsDirectory: String?, logger: Logger, now: Int64
    ) throws -> DaemonStore {
        guard let url = settings.databaseURL else {
            let marker = stateDirectory + "/" + SQLiteMigration.movedMarker
            if let note = FileManager.default.contents(atPath: marker) {
                throw StartupError(
                    "this state directory was \(String(decoding: note, as: UTF8.self).trimmingCharacters(in: .newlines)): "
                        + "set database_url, or remove \(marker) to serve from it alone again")
            }
            do {
                let database = try AuthDatabase(path: stateDirectory + "/authd.sqlite3")
                try database.loadView(now: now)
                return .sqlite(database)
            } catch {
                throw StartupError("cannot open the database in \(stateDirectory): \(error)")
            }
        }
        #if canImport(AuthPostgres)
            var password: String?
            if let directory = credentialsDirectory,
                let bytes = FileManager.default.contents(atPath: directory + "/database-password")
            {
                var text = String(decoding: bytes, as: UTF8.self)
                while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
                password = text
            }
            // The poll stands in for lost notifications, and an idle
            // daemon's age since its last read must stay under
            // max_staleness: a quarter of it, at most a second.
            let poll = Duration.milliseconds(min(1_000, max(50, settings.maxStaleness * 250)))
            let options = PostgresStore.Options(
                poolSize: settings.databasePoolSize, timeout: .seconds(settings.databaseTimeout), feedInterval: poll)
            do {
                // `url` prints with its password masked.
                return .postgres(
                    try PostgresStore.openBlocking(
                        url: url, password: password, options: options, logger: logger, now: now))
            } catch {
                throw StartupError("cannot open the database \(url): \(PostgresStore.describe(error))")
            }
        #else
            throw StartupError(
                "database_url is set, but this authd was built without PostgreSQL (AUTHD_WITHOUT_POSTGRES)")
        #endif
    }

    var credentialStore: any CredentialStore {
        switch self {
        case .sqlite(let database): database
        #if canImport(AuthPostgres)
            case .postgres(let store): store
        #endif
        }
    }

    var view: LiveView { credentialStore.view }

    /// Where the signing keys are shared with other daemons (PostgreSQL).
    var sharedSigningKeys: (any SharedSigningKeys)? {
        switch self {
        case .sqlite: nil
        #if canImport(AuthPostgres)
            case .postgres(let store): store
        #endif
        }
    }

    /// The SQLite file, for the checks only it needs.
    var sqlite: AuthDatabase? {
        if case .sqlite(let database) = self { return database }
        return nil
    }

    /// Deletes what expired; nil when another daemon on the shared
    /// database is sweeping right now.
    func sweep(now: Int64, loginWindow: Int64) throws -> SweepResult? {
        switch self {
        case .sqlite(let database):
            let result = try database.sweep(now: now, loginWindow: loginWindow)
            return SweepResult(sessions: result.sessions, failureCounters: result.failureCounters)
        #if canImport(AuthPostgres)
            case .postgres(let store):
                return try store.blocking {
                    try await store.sweep(now: now, loginWindow: loginWindow).map {
                        SweepResult(sessions: $0.sessions, failureCounters: $0.failureCounters)
                    }
                }
        #endif
        }
    }

    func close() throws {
        switch self {
        case .sqlite(let database): try database.close()
        #if canImport(AuthPostgres)
            case .postgres(let store): store.shutdown()
        #endif
        }
    }
}
