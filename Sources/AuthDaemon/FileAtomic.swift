import Foundation

/// Writes a file atomically: a temporary file with the final mode, fsync,
/// rename over the target, fsync of the directory.
enum FileAtomic {
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw KeyStore.Failure(description: "cannot write \(temporary): errno \(errno)") }
        var ok = bytes.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw KeyStore.Failure(description: "cannot write \(path): errno \(errno)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
