import AuthCore
import AuthCrypto
import AuthServiceCore
import AuthStore
import Foundation
import Logging

#if canImport(AuthPostgres)
    import AuthPostgres
#endif

/// `authd migrate --from-sqlite STATE_DIR`: copies a single-host deployment
/// (users with their hashes and roles, live sessions with their refresh
/// tokens, failure counters, signing keys) into the empty PostgreSQL
/// database that `database_url` names, so hosts can move onto it without
/// logging anyone out. The state directory's daemon must be stopped (its
/// lock is taken); the copy is one transaction, so it lands whole or not
/// at all.
public enum SQLiteMigration {
    /// The file left in a state directory whose deployment was moved:
    /// a daemon on SQLite refuses to start on it.
    public static let movedMarker = "moved-to-postgresql"

    /// Runs the copy; returns what was copied, for the operator.
    public static func run(
        stateDirectory: String, configPath: String?, configDirectory: String? = nil, settingFlags: [String: String],
        environment: [String: String], logger: Logger
    ) throws -> String {
        umask(0o077)
        let options = DaemonOptions(
            listenPath: nil, socketMode: 0o660, stateDirectory: stateDirectory, configPath: configPath,
            configDirectory: configDirectory, settingFlags: settingFlags)
        let settings = try Daemon.loadSettings(options: options, environment: environment, cores: 1)
        guard let url = settings.databaseURL else {
            throw StartupError("migrate needs the database to copy into: --database-url (or AUTHD_DATABASE_URL)")
        }
        guard FileManager.default.fileExists(atPath: stateDirectory + "/authd.sqlite3") else {
            throw StartupError("no authd database in \(stateDirectory) (expected \(stateDirectory)/authd.sqlite3)")
        }
        guard let encryptionKey = try Daemon.keyEncryptionKey(environment: environment, required: true) else {
            throw StartupError("no key-encryption key")
        }
        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock(stateDirectory: stateDirectory)
        } catch {
            throw StartupError("\(error) (stop the authd of \(stateDirectory) first)")
        }
        defer { withExtendedLifetime(lock) {} }
        let now = WallClock.unixSeconds()
        let database: AuthDatabase
        var copy: DeploymentCopy
        do {
            database = try AuthDatabase(path: stateDirectory + "/authd.sqlite3")
            copy = try database.copyForMigration(now: now)
            try database.close()
        } catch {
            throw StartupError("cannot read the database in \(stateDirectory): \(error)")
        }
        // Second factors are sealed under this state directory's key (the
        // one generated into keys/, else the one given): resealed under
        // the shared key, so every host opens them.
        if !copy.secondFactors.isEmpty {
            copy.secondFactors = try resealed(
                copy.secondFactors, stateDirectory: stateDirectory, sharedKey: encryptionKey)
        }
        // This host's client counters, as a shared store names them.
        let host = settings.instanceName
        for index in copy.failureCounters.indices {
            copy.failureCounters[index].key = LoginThrottle.sharedKey(copy.failureCounters[index].key, host: host)
        }
        #if canImport(AuthPostgres)
            let store = try DaemonStore.open(
                settings: settings, stateDirectory: stateDirectory,
                credentialsDirectory: environment["CREDENTIALS_DIRECTORY"], logger: logger, now: now)
            defer { try? store.close() }
            guard case .postgres(let postgres) = store else { throw StartupError("database_url is not PostgreSQL") }
            let keyring = SharedKeyring(store: postgres, encryptionKey: encryptionKey)
            let keys: [StoredSigningKey]
            do {
                keys = try KeyStore.keysToMove(
                    stateDirectory: stateDirectory, credentialsDirectory: environment["CREDENTIALS_DIRECTORY"],
                    environment: environment, algorithm: settings.algorithm,
                    retention: settings.accessTTL + settings.clockLeeway, sealingWith: keyring, now: now)
            } catch let error as KeyStore.Failure {
                throw StartupError(error.description)
            }
            do {
                try postgres.importDeployment(
                    copy, keys: keys, checks: keyring.checkValues(algorithm: settings.algorithm))
            } catch let error as PostgresStoreError {
                throw StartupError("nothing was copied: \(error.description)")
            } catch {
                throw StartupError(
                    "the copy into \(url) failed: \(PostgresStore.describe(error)); if that was a timeout or a lost "
                        + "connection it may have committed: look for users in the database before trying again")
            }
            // The single host must not come back beside the hosts now serving
            // its users: two copies of a session would each accept its token.
            let marker =
                "moved into \(url) at \(now) (unix time) by authd migrate; this state directory "
                + "no longer serves on its own\n"
            try? FileAtomic.write(Array(marker.utf8), to: stateDirectory + "/" + movedMarker, mode: 0o600)
            let given = keys.filter { $0.sealed == nil }.map { $0.purpose.rawValue }
            return "copied \(copy.users.count) users (\(copy.secondFactors.count) with a second factor), "
                + "\(copy.sessions.count) live sessions, "
                + "\(copy.failureCounters.count) failure counters and \(keys.count) signing keys into \(url)"
                + (given.isEmpty
                    ? ""
                    : "; the \(given.joined(separator: " and ")) keys are given, not stored: give every host the same")
        #else
            throw StartupError("this authd was built without PostgreSQL (AUTHD_WITHOUT_POSTGRES)")
        #endif
    }

    /// Each second factor's secret opened with the key it was sealed under
    /// and sealed again under `sharedKey`. A secret that opens with neither
    /// the state directory's generated key nor the shared one stops the
    /// move (nothing is copied): its user would lose their second factor.
    static func resealed(
        _ factors: [DeploymentCopy.SecondFactor], stateDirectory: String, sharedKey: KeyEncryptionKey
    ) throws -> [DeploymentCopy.SecondFactor] {
        var candidates = [sharedKey]
        let path = stateDirectory + "/keys/key-encryption-key"
        if let bytes = try? StateFiles.readOwnedFile(path, what: "key file") {
            do {
                candidates.insert(try KeyEncryptionKey(text: String(decoding: bytes, as: UTF8.self)), at: 0)
            } catch {
                throw StartupError("\(path): \(error)")
            }
        }
        return try factors.map { factor in
            let context = SecondFactorRecord.sealingContext(userID: factor.userID)
            guard
                let secret = candidates.lazy.compactMap({
                    try? AESGCM.open(factor.record.sealedSecret, key: $0.bytes, associatedData: context)
                }).first
            else {
                throw StartupError(
                    "the second factor of user \(factor.userID) opens with neither \(path) nor the key-encryption key "
                        + "given: nothing was copied")
            }
            var moved = factor
            moved.record.sealedSecret = try AESGCM.seal(secret, key: sharedKey.bytes, associatedData: context)
            return moved
        }
    }
}
