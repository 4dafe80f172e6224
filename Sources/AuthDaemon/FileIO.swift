import Foundation

/// Whole reads and writes on a descriptor, an interrupted call retried: the
/// loops that key files, backups and restores share.
enum FileIO {
    /// Writes all of `bytes`; false on an error (`errno` says which).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Reads `fd` to its end, handing each chunk (at most `chunkSize`
    /// bytes) to `body`; false on a read error (`errno` says which).
    static func readAll(
        _ fd: Int32, chunkSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows -> Bool {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            if count == 0 { return true }
            try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }
}
