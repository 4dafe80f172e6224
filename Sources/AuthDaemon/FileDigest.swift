import AuthCrypto
import Foundation

/// A file's size and SHA-256, read in 1 MiB chunks (a database copy is not
/// held in memory whole).
enum FileDigest {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// (bytes, lower-case hex digest). Refuses a symlink.
    static func sha256(ofFileAt path: String) throws -> (Int64, String) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
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
}
