import ArgumentParser
import AuthClient
import AuthCrypto
import AuthJSON
import AuthProtocol
import AuthServiceCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `authctl backup DEST`: has authd write a backup into its state directory
/// (`sys.backup`), copies it into the new folder DEST (0700, files 0600)
/// and removes it there. authd's sandbox lets it write only in its state
/// directory, so the copy is authctl's: it must be able to read that
/// directory (root can).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up authd's database and keys into a new folder.",
        discussion: """
            An online copy: authd keeps serving. DEST must not exist; it is created 0700 with
            files 0600, and holds the signing keys and the key-encryption key: keep it as you
            keep those. Keys given as credentials or environment variables are not in it (the
            command names them). Each file is checked, as it is copied, against the size and
            SHA-256 authd gave, and the manifest must list exactly those files. Check a backup
            again with 'authd restore --check --from DEST';
            restore it with 'authd restore --from DEST --state-dir DIR' while authd is stopped.
            On a shared PostgreSQL database authd answers 'unsupported': use pg_dump.
            """)
    @OptionGroup var options: GlobalOptions
    @Argument(help: "A new folder for the backup (it must not exist).") var destination: String

    func run() async throws {
        try await Exit.guarding(options.json) {
            // Refused before authd copies anything.
            guard !FileManager.default.fileExists(atPath: destination) else {
                FileHandle.standardError.write(Data("authctl: \(destination) exists; give a new folder\n".utf8))
                throw ExitCode(1)
            }
            // A large database takes a while to copy.
            let admin = AuthClient(socketPath: options.socketPath, timeout: .seconds(600))
                .admin(accessToken: TokenFile.read())
            let backup = try await admin.backup()
            do {
                try BackupCopy.collect(backup, into: destination)
            } catch let failure as BackupCopy.Failure {
                FileHandle.standardError.write(Data("authctl: \(failure.description)\n".utf8))
                throw ExitCode(1)
            }
            let bytes = backup.files.reduce(0) { $0 + $1.bytes }
            if options.json {
                printJSON(
                    .object([
                        "directory": .string(destination), "files": .int(backup.files.count), "bytes": .int(bytes),
                        "created_at": .int(backup.createdAt),
                        "not_included": .array(backup.notIncluded.map(JSONValue.string)),
                    ]))
            } else {
                print("backup written to \(destination): \(backup.files.count) files, \(bytes) bytes")
                for key in backup.notIncluded {
                    print("not in the backup (keep it with your credentials): \(BackupLayout.printable(key))")
                }
            }
        }
    }
}

/// Copies a backup authd wrote out of its state directory. It runs as root
/// and takes its paths from the daemon's answer, so it trusts none of
/// them: the folder must be `…/backups/NAME` as the daemon names it, each
/// file `authd.sqlite3` or `keys/NAME`, every step below the folder is
/// opened relative to its parent without following a link, only regular
/// files are read, and afterwards only what was copied is unlinked (never
/// a recursive delete of a path the daemon named). DEST is created and
/// written the same way.
enum BackupCopy {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Copies every listed file and the manifest into `destination`, checks
    /// each size and SHA-256, then removes authd's copy.
    static func collect(_ backup: BackupInfo, into destination: String) throws {
        let source = try checkedFolder(backup.directory)
        for file in backup.files where !BackupLayout.isFilePath(file.path) {
            throw Failure(description: "authd's answer names an unexpected file: \(BackupLayout.printable(file.path))")
        }
        let sourceFD = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sourceFD >= 0 else {
            throw Failure(
                description: errno == EACCES
                    ? "authd wrote the backup to \(source), which this user cannot read: run 'authctl backup' as root (authd deletes it after an hour)"
                    : "cannot open \(source): \(String(cString: strerror(errno)))")
        }
        defer { close(sourceFD) }
        let sourceKeys = openat(sourceFD, BackupLayout.keysFolder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sourceKeys >= 0 else { throw Failure(description: "cannot open \(source)/keys") }
        defer { close(sourceKeys) }

        let previous = umask(0o077)
        defer { umask(previous) }
        guard mkdir(destination, 0o700) == 0 else {
            throw Failure(description: "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        let targetFD = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard targetFD >= 0, mkdirat(targetFD, BackupLayout.keysFolder, 0o700) == 0 else {
            if targetFD >= 0 { close(targetFD) }
            try? FileManager.default.removeItem(atPath: destination)
            throw Failure(description: "cannot create \(destination)/keys")
        }
        defer { close(targetFD) }
        let targetKeys = openat(targetFD, BackupLayout.keysFolder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        defer { if targetKeys >= 0 { close(targetKeys) } }
        var copied: [(Int32, String)] = []
        do {
            guard targetKeys >= 0 else { throw Failure(description: "cannot open \(destination)/keys") }
            for file in backup.files {
                let (from, to, name) =
                    file.path == BackupLayout.database
                    ? (sourceFD, targetFD, file.path) : (sourceKeys, targetKeys, String(file.path.dropFirst(5)))
                let (size, digest, _) = try copy(name, from: from, to: to)
                guard size == file.bytes else {
                    throw Failure(description: "\(file.path) is \(size) bytes, authd wrote \(file.bytes)")
                }
                guard digest == file.sha256 else {
                    throw Failure(
                        description: "\(file.path) does not have the SHA-256 authd gave: changed since it was written")
                }
                copied.append((from, name))
            }
            let (_, _, manifest) = try copy(BackupLayout.manifest, from: sourceFD, to: targetFD, keeping: 1 << 20)
            try checkManifest(manifest, lists: backup.files)
            copied.append((sourceFD, BackupLayout.manifest))
            _ = fsync(targetKeys)
            _ = fsync(targetFD)
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
        // authd's copy: what was copied, then its two folders if now empty.
        for (folder, name) in copied { unlinkat(folder, name, 0) }
        unlinkat(sourceFD, BackupLayout.keysFolder, AT_REMOVEDIR)
        rmdir(source)
    }

    /// `authd restore` trusts the manifest alone: it must list exactly the
    /// files (paths, sizes, digests) the answer gave and authctl checked,
    /// or a changed manifest could leave a key out of every later restore
    /// once authd's copy is gone.
    static func checkManifest(_ bytes: [UInt8], lists files: [BackupInfo.File]) throws {
        let listed: [StateBackup.File]
        do {
            listed = try StateBackup.parseManifest(JSONParser.parse(bytes), directory: "").files
        } catch {
            throw Failure(description: "\(BackupLayout.manifest) in authd's backup cannot be used: \(error)")
        }
        let answered = files.map { StateBackup.File(path: $0.path, bytes: $0.bytes, sha256: $0.sha256) }
        guard listed.sorted(by: { $0.path < $1.path }) == answered.sorted(by: { $0.path < $1.path }) else {
            throw Failure(description: "\(BackupLayout.manifest) in authd's backup does not list the files authd gave")
        }
    }

    /// The answer's folder, if it has the shape the daemon gives it.
    static func checkedFolder(_ directory: String) throws -> String {
        let parts = directory.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard directory.hasPrefix("/"), parts.count >= 3,
            parts.dropFirst().allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
            parts[parts.count - 2] == BackupLayout.folder, BackupLayout.isFolderName(parts[parts.count - 1])
        else {
            throw Failure(
                description: "authd's answer names an unexpected folder: \(BackupLayout.printable(directory))")
        }
        return directory
    }

    /// Copies the regular file `name` of the folder `from` into a new 0600
    /// file of the folder `to`, synced; returns its size, the SHA-256
    /// (lower-case hex) of the bytes copied, and, when `keeping` is given,
    /// the bytes themselves (a larger file is refused).
    private static func copy(_ name: String, from: Int32, to: Int32, keeping limit: Int? = nil) throws -> (
        Int64, String, [UInt8]
    ) {
        let input = openat(from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard input >= 0 else { throw Failure(description: "cannot open \(name): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Failure(description: "\(name) in authd's backup is not a regular file")
        }
        let output = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw Failure(description: "cannot create \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        let digest = SHA256Stream()
        var kept: [UInt8] = []
        while true {
            let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(name)")
            }
            if count == 0 { break }
            chunk.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            if let limit {
                guard kept.count + count <= limit else { throw Failure(description: "\(name) is too large") }
                kept += chunk[..<count]
            }
            var offset = 0
            while offset < count {
                let written = chunk.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Failure(description: "cannot write \(name): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
            total += Int64(count)
        }
        guard fsync(output) == 0 else { throw Failure(description: "cannot sync \(name)") }
        return (total, SHA256Stream.hex(digest.finish()), kept)
    }
}
