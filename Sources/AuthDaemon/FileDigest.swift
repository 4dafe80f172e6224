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
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            chunk.withUnsafeBytes { stream.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            total += Int64(count)
        }
        return (total, SHA256Stream.hex(stream.finish()))
    }

    /// A regular file's bytes, at most `limit` of them.
    static func readRegularFile(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(path)")
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= limit else { throw Failure(description: "\(path) is over \(limit) bytes") }
        }
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
