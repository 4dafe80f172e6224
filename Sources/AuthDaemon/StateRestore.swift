import AuthCore
import AuthCrypto
import AuthProtocol
import AuthServiceCore
import AuthStore
import Foundation

/// `authd restore --from BACKUP --state-dir DIR`: puts a backup written by
/// `sys.backup` (and collected by `authctl backup`) into a state directory,
/// after checking every file against the backup's manifest (size and
/// SHA-256) and the database with `integrity_check`. It never overwrites:
/// a state directory that already has a database or key files is refused,
/// and no daemon may hold it meanwhile (its lock is taken). Files are
/// copied under a temporary name and renamed into place, the keys before
/// the database. The state directory must be the restoring user's own (as
/// the daemon requires of its own): root restores into a new folder, and
/// systemd gives it to the service's user at its next start
/// (`StateDirectory=`); elsewhere, run it as the daemon's user.
public enum StateRestore {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks the backup in `backupDirectory`; unless `checkOnly`, restores
    /// it into `stateDirectory`. Returns a one-line summary.
    public static func run(backupDirectory: String, stateDirectory: String?, checkOnly: Bool) throws -> String {
        let backup = try check(backupDirectory)
        let summary =
            "\(backup.files.count) files, \(backup.totalBytes) bytes, written by authd \(backup.version) at \(backup.createdAt)"
        guard !checkOnly else { return "backup \(backupDirectory) is intact: \(summary)" }
        guard let stateDirectory else { throw Failure(description: "--state-dir is required to restore") }
        try restore(backup, into: stateDirectory)
        var line = "restored into \(stateDirectory): \(summary)"
        if !backup.notIncluded.isEmpty {
            line += "; not in the backup, give them as before: " + backup.notIncluded.joined(separator: ", ")
        }
        return line
    }

    /// The manifest, with every file it lists checked.
    static func check(_ directory: String) throws -> StateBackup {
        let manifestPath = directory + "/" + StateBackup.manifestName
        var folder = stat()
        guard lstat(directory, &folder) == 0, folder.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "\(directory) is not a folder")
        }
        var keys = stat()
        guard lstat(directory + "/keys", &keys) == 0, keys.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "\(directory)/keys is not a folder (a link is refused)")
        }
        let bytes: [UInt8]
        do {
            bytes = try FileDigest.readRegularFile(manifestPath, limit: 1 << 20)
        } catch {
            throw Failure(description: "\(directory) is not a backup: \(error)")
        }
        let backup: StateBackup
        do {
            backup = try StateBackup.parseManifest(try JSONParser.parse(bytes), directory: directory)
        } catch {
            throw Failure(description: "\(manifestPath) cannot be used: \(error)")
        }
        for file in backup.files {
            let (size, digest) = try FileDigest.sha256(ofFileAt: directory + "/" + file.path)
            guard size == file.bytes, digest == file.sha256 else {
                throw Failure(
                    description:
                        "\(directory)/\(file.path) is not the file the backup wrote (\(size) bytes, SHA-256 \(digest); the manifest says \(file.bytes) bytes, \(file.sha256))"
                )
            }
        }
        try AuthDatabase.checkIntegrity(ofFileAt: directory + "/authd.sqlite3")
        if let unknown = try AuthDatabase.unknownMigrations(ofFileAt: directory + "/authd.sqlite3") {
            throw Failure(
                description:
                    "the backup's database has a schema this authd does not know (\(unknown.joined(separator: ", "))): restore it with the version that wrote it (\(BackupLayout.printable(backup.version))) or a newer one"
            )
        }
        return backup
    }

    private static func restore(_ backup: StateBackup, into stateDirectory: String) throws {
        do {
            try StateFiles.prepareDirectory(stateDirectory, what: "state directory", followLink: true)
        } catch let error as StateFiles.Untrusted {
            throw Failure(description: error.description)
        }
        let lock = try StateDirectoryLock(stateDirectory: stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        for suffix in ["", "-wal", "-shm", "-journal"] where exists(stateDirectory + "/authd.sqlite3" + suffix) {
            throw Failure(
                description:
                    "\(stateDirectory) already has a database (authd.sqlite3\(suffix)): a restore never overwrites; move it aside first"
            )
        }
        let keys = stateDirectory + "/keys"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: keys), !names.isEmpty {
            throw Failure(
                description: "\(keys) already holds key files: a restore never overwrites; move it aside first")
        }
        // Copied under a temporary folder, then renamed into place: a
        // restore cut short leaves no half-written file under a real name.
        let staging = stateDirectory + "/.restore"
        try? FileManager.default.removeItem(atPath: staging)
        guard mkdir(staging, 0o700) == 0, mkdir(staging + "/keys", 0o700) == 0 else {
            throw Failure(description: "cannot create \(staging): \(String(cString: strerror(errno)))")
        }
        defer { try? FileManager.default.removeItem(atPath: staging) }
        for file in backup.files {
            let target = staging + "/" + file.path
            try copy(backup.directory + "/" + file.path, to: target, expecting: file)
        }
        SQLiteStateBackup.syncDirectory(staging + "/keys")
        SQLiteStateBackup.syncDirectory(staging)
        if exists(keys) { rmdir(keys) }
        guard rename(staging + "/keys", keys) == 0,
            rename(staging + "/authd.sqlite3", stateDirectory + "/authd.sqlite3") == 0
        else {
            throw Failure(
                description:
                    "cannot move the restored files into \(stateDirectory): \(String(cString: strerror(errno)))")
        }
        SQLiteStateBackup.syncDirectory(stateDirectory)
    }

    /// Copies `source` to a new `target` (0600), checking what was written
    /// against the manifest's entry as it goes (the backup could change
    /// between the check and the copy).
    private static func copy(_ source: String, to target: String, expecting file: StateBackup.File) throws {
        // Checked before, but it could have been swapped for a link or a FIFO since.
        let input: Int32
        do {
            input = try FileDigest.openRegularFile(source)
        } catch {
            throw Failure(description: "\(error)")
        }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw Failure(description: "cannot create \(target)") }
        defer { close(output) }
        let digest = SHA256Stream()
        var total: Int64 = 0
        let read = try FileIO.readAll(input) { chunk in
            guard FileIO.writeAll(output, chunk) else {
                throw Failure(description: "cannot write \(target): \(String(cString: strerror(errno)))")
            }
            digest.update(chunk)
            total += Int64(chunk.count)
        }
        guard read else { throw Failure(description: "cannot read \(source)") }
        guard fsync(output) == 0 else { throw Failure(description: "cannot sync \(target)") }
        guard total == file.bytes, SHA256Stream.hex(digest.finish()) == file.sha256 else {
            throw Failure(description: "\(source) changed while it was copied")
        }
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
