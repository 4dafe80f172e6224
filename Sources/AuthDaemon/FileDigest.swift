import AuthCrypto
import Foundation

/// A file's size and SHA-256, read in 1 MiB chunks (a database copy is not
/// held in memory whole).
enum FileDigest {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// (bytes, lower-case hex digest). Refuses anything but a regular file.
    static func sha256(ofFileAt path: String) throws -> (Int64, String) {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        let stream = SHA256Stream()
        var total: Int64 = 0
        let read = FileIO.readAll(fd) { chunk in
            stream.update(chunk)
            total += Int64(chunk.count)
        }
        guard read else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        return (total, SHA256Stream.hex(stream.finish()))
    }

    /// A regular file's bytes, at most `limit` of them.
    static func readRegularFile(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var bytes: [UInt8] = []
        let read = try FileIO.readAll(fd, chunkSize: 65536) { chunk in
            bytes.append(contentsOf: chunk)
            guard bytes.count <= limit else { throw Failure(description: "\(path) is over \(limit) bytes") }
        }
        guard read else { throw Failure(description: "cannot read \(path)") }
        return bytes
    }

    /// Opens without following a link or waiting on a FIFO, and refuses
    /// anything but a regular file.
    static func openRegularFile(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw Failure(description: "\(path) is not a regular file")
        }
        return fd
    }
}
