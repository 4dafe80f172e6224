import AuthCore
import AuthCrypto
import AuthServiceCore
import AuthStore
import Foundation
import NIOConcurrencyHelpers

/// `sys.backup` on the SQLite store: a folder in `STATE_DIR/backups/`
/// (0700, files 0600) with an online copy of the database (`VACUUM INTO`,
/// checked with `integrity_check`), the key files of `STATE_DIR/keys/`,
/// and `MANIFEST.json` with each file's size and SHA-256. The daemon's
/// sandbox lets it write only in its state directory, so the copy is made
/// there and `authctl backup` moves it where the operator wants it.
///
/// Against an admin who asks again and again: one backup at a time, at most
/// the previous one kept beside a new one, none written without the free
/// space for it (and a margin the live database keeps), and any left
/// uncollected deleted after `keptSeconds` by the sweeper.
final class SQLiteStateBackup: StateBackupWriter, @unchecked Sendable {
    static let keptSeconds: Int64 = 3600
    /// Free space a backup leaves for the live database's own writes.
    static let reserveBytes: Int64 = 64 << 20

    private let database: AuthDatabase
    private let stateDirectory: String
    private let notIncluded: [String]
    private let writing = NIOLockedValueBox(false)
    /// The copy in progress, for `cancel()`.
    private let current = NIOLockedValueBox<AuthDatabase.SnapshotCancellation?>(nil)
    private let stopped = NIOLockedValueBox(false)
    private let queue = DispatchQueue(label: "authd.backup")

    var backupsDirectory: String { stateDirectory + "/backups" }

    /// `notIncluded`: the keys this daemon was given from outside its state
    /// directory (see `Daemon.keysGivenOutside`).
    init(database: AuthDatabase, stateDirectory: String, notIncluded: [String]) {
        self.database = database
        self.stateDirectory = stateDirectory
        self.notIncluded = notIncluded
    }

    func writeBackup(now: Int64, _ done: @escaping @Sendable (Result<StateBackup, StateBackupFailure>) -> Void) {
        let started = writing.withLockedValue { busy in
            if busy { return false }
            busy = true
            return true
        }
        guard started else { return done(.failure(.inProgress)) }
        let cancellation = AuthDatabase.SnapshotCancellation()
        current.withLockedValue { $0 = cancellation }
        if stopped.withLockedValue({ $0 }) { cancellation.cancel() }
        queue.async { [self] in
            let result: Result<StateBackup, StateBackupFailure>
            do {
                result = .success(try write(now: now, cancellation: cancellation))
            } catch {
                result = .failure(stopped.withLockedValue { $0 } ? .cancelled : .failed("\(error)"))
            }
            current.withLockedValue { $0 = nil }
            writing.withLockedValue { $0 = false }
            done(result)
        }
    }

    /// The daemon is stopping: a copy in progress is interrupted (and its
    /// folder removed), and none starts.
    func cancel() {
        stopped.withLockedValue { $0 = true }
        current.withLockedValue { $0 }?.cancel()
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private func write(now: Int64, cancellation: AuthDatabase.SnapshotCancellation) throws -> StateBackup {
        try StateFiles.prepareDirectory(backupsDirectory, what: "backups directory", followLink: false)
        removeAll(but: 1)
        let directory = backupsDirectory + "/" + Self.folderName(now: now)
        guard mkdir(directory, 0o700) == 0 else {
            throw Failure(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        do {
            try checkFreeSpace(in: directory)
            try database.writeSnapshot(to: directory + "/authd.sqlite3", cancellation: cancellation)
            var files = [try Self.describe(directory, "authd.sqlite3")]
            guard mkdir(directory + "/keys", 0o700) == 0 else {
                throw Failure(description: "cannot create \(directory)/keys")
            }
            for name in try keyFileNames() {
                guard let bytes = try StateFiles.readOwnedFile(stateDirectory + "/keys/" + name, what: "key file")
                else { continue }  // deleted since it was listed
                try Self.writeNew(bytes, to: directory + "/keys/" + name)
                files.append(try Self.describe(directory, "keys/" + name))
            }
            let backup = StateBackup(
                directory: directory, createdAt: now, version: AuthService.version,
                schema: try AuthDatabase.schemaVersion(ofFileAt: directory + "/authd.sqlite3"), files: files,
                notIncluded: notIncluded)
            try Self.writeNew(
                JSONWriter.encode(backup.manifestJSON) + [0x0A],
                to: directory + "/" + StateBackup.manifestName)
            Self.syncDirectory(directory + "/keys")
            Self.syncDirectory(directory)
            Self.syncDirectory(backupsDirectory)
            return backup
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Deletes backups older than `keptSeconds` (the sweeper calls it).
    func removeExpired(now: Int64) {
        for (name, modified) in existing() where now - modified.seconds > Self.keptSeconds {
            try? FileManager.default.removeItem(atPath: backupsDirectory + "/" + name)
        }
    }

    /// Deletes all but the `keeping` newest backups.
    private func removeAll(but keeping: Int) {
        let newestFirst = existing().sorted {
            ($0.modified.seconds, $0.modified.nanoseconds) > ($1.modified.seconds, $1.modified.nanoseconds)
        }
        for entry in newestFirst.dropFirst(keeping) {
            try? FileManager.default.removeItem(atPath: backupsDirectory + "/" + entry.name)
        }
    }

    /// The folders in `backups/` and when each was last changed.
    private func existing() -> [(name: String, modified: (seconds: Int64, nanoseconds: Int))] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: backupsDirectory) else { return [] }
        return names.compactMap { name in
            var info = stat()
            guard lstat(backupsDirectory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                return nil
            }
            return (name, (Int64(info.st_mtim.tv_sec), info.st_mtim.tv_nsec))
        }
    }

    /// The regular files of `keys/` (not the temporary files of a write in
    /// progress: the key they replace is there whole).
    private func keyFileNames() throws -> [String] {
        let keys = stateDirectory + "/keys"
        guard FileManager.default.fileExists(atPath: keys) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: keys).filter { name in
            var info = stat()
            return !name.hasSuffix(".tmp") && lstat(keys + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
        }.sorted()
    }

    /// Refuses a backup the file system has no room for: the copy is at most
    /// the database's size (file and WAL), and the live database keeps
    /// `reserveBytes` for its own writes.
    private func checkFreeSpace(in directory: String) throws {
        var needed = Self.reserveBytes
        for suffix in ["", "-wal"] {
            var info = stat()
            if stat(stateDirectory + "/authd.sqlite3" + suffix, &info) == 0 { needed += Int64(info.st_size) }
        }
        var space = statvfs()
        guard statvfs(directory, &space) == 0 else { return }
        let free = Int64(space.f_bavail) * Int64(space.f_frsize)
        guard free >= needed else {
            throw Failure(description: "not enough free space for a backup: \(free) bytes free, \(needed) needed")
        }
    }

    /// `20261207T013000Z-1a2b3c4d`: sorts by time; the random part keeps two
    /// backups within one second apart.
    static func folderName(now: Int64) -> String {
        var seconds = time_t(now)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let stamp = String(
            format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
            parts.tm_min, parts.tm_sec)
        return stamp + "-" + SHA256Stream.hex(SecureRandom.bytes(4))
    }

    /// A file's entry in the manifest, its digest read back from the disk.
    static func describe(_ directory: String, _ path: String) throws -> StateBackup.File {
        let (bytes, digest) = try FileDigest.sha256(ofFileAt: directory + "/" + path)
        return StateBackup.File(path: path, bytes: bytes, sha256: digest)
    }

    /// Writes a new file (0600, never over an existing one) and syncs it.
    static func writeNew(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ FileIO.writeAll(fd, $0) }) else {
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot sync \(path)") }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
