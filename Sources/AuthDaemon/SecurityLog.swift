import AuthCore
import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// Where security events go: the journal through `sd_journal_sendv` when
/// journald is there, else one JSON object per line on stderr. Writing an
/// event never fails the request that caused it.
public final class SecurityLog: Sendable {
    public enum Target: String, Sendable {
        case journal
        case stderr
    }

    public let target: Target
    private let stderrLock = NIOLockBox()

    public init(target: Target? = nil) {
        if let target {
            self.target = target
        } else {
            self.target = access("/run/systemd/journal/socket", W_OK) == 0 ? .journal : .stderr
        }
    }

    public func record(_ event: SecurityEvent) {
        switch target {
        case .journal:
            if sendToJournal(event.fields) { return }
            writeToStderr(event.jsonLine)
        case .stderr:
            writeToStderr(event.jsonLine)
        }
    }

    private func sendToJournal(_ fields: [(String, String)]) -> Bool {
        var entries = fields.map { Array("\($0.0)=\($0.1)".utf8) }
        var iovecs: [iovec] = []
        iovecs.reserveCapacity(entries.count)
        return entries.withUnsafeMutableBufferPointer { buffers in
            for index in buffers.indices {
                buffers[index].withUnsafeMutableBytes { raw in
                    iovecs.append(iovec(iov_base: raw.baseAddress, iov_len: raw.count))
                }
            }
            return sd_journal_sendv(iovecs, Int32(iovecs.count)) == 0
        }
    }

    private func writeToStderr(_ line: [UInt8]) {
        stderrLock.withLock {
            line.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(2, raw.baseAddress! + offset, raw.count - offset)
                    if written <= 0 {
                        if written < 0 && errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}
