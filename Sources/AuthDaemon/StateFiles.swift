#if canImport(Glibc)
    import Glibc
#endif

/// Trust checks on the state directory and the files authd keeps in it:
/// each must belong to the daemon's own user and be writable by no one
/// else, else start-up stops with a message that names the path. Files we
/// own that an older version created readable by others are tightened.
/// Key files are opened with `O_NOFOLLOW` and checked with `fstat` on the
/// descriptor actually read, so a planted symlink or a swap between check
/// and use is refused. (`$CREDENTIALS_DIRECTORY` is systemd's and is not
/// checked here.)
enum StateFiles {
    struct Untrusted: Error, CustomStringConvertible {
        let description: String
    }

    /// Creates the directory (0700) or checks an existing one. `followLink`:
    /// the state directory itself may be a symlink (`DynamicUser=` makes
    /// `/var/lib/authd` one); directories inside it may not.
    static func prepareDirectory(_ path: String, what: String, followLink: Bool) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw Untrusted(description: "cannot create the \(what) \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        let result = followLink ? stat(path, &info) : lstat(path, &info)
        guard result == 0 else {
            throw Untrusted(description: "cannot inspect the \(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw Untrusted(description: "the \(what) \(path) is not a directory")
        }
        try checkOwner(info, path: path, what: what)
        if info.st_mode & 0o077 != 0 {
            guard chmod(path, 0o700) == 0 else {
                throw Untrusted(description: "cannot tighten the \(what) \(path) to mode 0700")
            }
        }
    }

    /// Reads a file we keep (keys, keyrings) without following a symlink;
    /// `nil` when it does not exist. Checked on the open descriptor.
    static func readOwnedFile(_ path: String, what: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw Untrusted(description: "the \(what) \(path) is a symbolic link; refusing it") }
            throw Untrusted(description: "cannot open the \(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Untrusted(description: "the \(what) \(path) is not a regular file")
        }
        try checkOwner(info, path: path, what: what)
        if info.st_mode & 0o077 != 0 { _ = fchmod(fd, 0o600) }
        var bytes: [UInt8] = []
        guard FileIO.readAll(fd, chunkSize: 4096, { bytes.append(contentsOf: $0) }) else {
            throw Untrusted(description: "cannot read the \(what) \(path)")
        }
        return bytes
    }

    /// Tightens a file we keep (the database and its WAL/SHM) to 0600, and
    /// refuses one that is someone else's. Nothing to do when it is absent.
    static func tightenOwnedFile(_ path: String, what: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw Untrusted(description: "the \(what) \(path) is not a regular file")
        }
        try checkOwner(info, path: path, what: what)
        if info.st_mode & 0o077 != 0 && chmod(path, 0o600) != 0 {
            throw Untrusted(description: "cannot tighten the \(what) \(path) to mode 0600")
        }
    }

    private static func checkOwner(_ info: stat, path: String, what: String) throws {
        let me = geteuid()
        guard info.st_uid == me else {
            throw Untrusted(
                description:
                    "the \(what) \(path) belongs to uid \(info.st_uid), not to authd's user (uid \(me)); refusing it"
            )
        }
        guard info.st_mode & 0o022 == 0 || info.st_mode & S_IFMT == S_IFLNK else {
            throw Untrusted(
                description:
                    "the \(what) \(path) is writable by its group or others (mode \(String(info.st_mode & 0o7777, radix: 8))); refusing it"
            )
        }
    }
}

/// An exclusive `flock` on `STATE_DIR/authd.lock`, held for the life of the
/// process: a second daemon on the same state directory refuses to start
/// (two in-memory views of one database would disagree on revocations).
final class StateDirectoryLock {
    private let descriptor: Int32

    init(stateDirectory: String) throws {
        let path = stateDirectory + "/authd.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StateFiles.Untrusted(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = StateDirectoryLock.readPID(fd)
            close(fd)
            throw StateFiles.Untrusted(
                description:
                    "another authd\(holder.map { " (pid \($0))" } ?? "") is already running on the state directory \(stateDirectory)"
            )
        }
        descriptor = fd
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count], as: UTF8.self).filter(\.isNumber))
    }

    deinit { close(descriptor) }
}
