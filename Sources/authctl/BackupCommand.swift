import ArgumentParser
import AuthClient
import AuthJSON
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
            command names them). Check a backup with 'authd restore --check --from DEST';
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
                    print("not in the backup (keep it with your credentials): \(key)")
                }
            }
        }
    }
}

/// Copies a backup authd wrote out of its state directory.
enum BackupCopy {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Copies every listed file and the manifest into `destination`, checks
    /// each size, then removes authd's copy.
    static func collect(_ backup: BackupInfo, into destination: String) throws {
        let source = backup.directory
        guard access(source + "/MANIFEST.json", R_OK) == 0 else {
            throw Failure(
                description:
                    "authd wrote the backup to \(source), which this user cannot read: run 'authctl backup' as root (authd deletes it after an hour)"
            )
        }
        let previous = umask(0o077)
        defer { umask(previous) }
        guard mkdir(destination, 0o700) == 0 else {
            throw Failure(description: "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        do {
            guard mkdir(destination + "/keys", 0o700) == 0 else {
                throw Failure(description: "cannot create \(destination)/keys")
            }
            for file in backup.files {
                let copied = try copy(source + "/" + file.path, to: destination + "/" + file.path)
                guard copied == file.bytes else {
                    throw Failure(description: "\(file.path) is \(copied) bytes, authd wrote \(file.bytes)")
                }
            }
            _ = try copy(source + "/MANIFEST.json", to: destination + "/MANIFEST.json")
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
        try? FileManager.default.removeItem(atPath: source)
    }

    /// Copies one file into a new 0600 file, synced; returns its size.
    private static func copy(_ source: String, to target: String) throws -> Int64 {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else {
            throw Failure(description: "cannot open \(source): \(String(cString: strerror(errno)))")
        }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw Failure(description: "cannot create \(target): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(source)")
            }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let written = chunk.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Failure(description: "cannot write \(target): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
            total += Int64(count)
        }
        guard fsync(output) == 0 else { throw Failure(description: "cannot sync \(target)") }
        return total
    }
}
