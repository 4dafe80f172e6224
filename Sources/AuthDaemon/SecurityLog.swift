import AuthCore
import AuthServiceCore
import CSystemd
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Where security events go: the journal through `sd_journal_sendv` when
/// journald is there, else one JSON object per line on stderr. Writing an
/// event never fails the request that caused it. Floods are aggregated per
/// peer and event name (`EventAggregator`).
public final class SecurityLog: SecurityEventSink {
    public enum Target: String, Sendable {
        case journal
        case stderr
    }

    public let target: Target
    private let stderrLock = NIOLock()
    private let aggregator = NIOLockedValueBox(EventAggregator())
    private let clock: @Sendable () -> Int64

    public init(target: Target? = nil, clock: @escaping @Sendable () -> Int64 = { WallClock.unixSeconds() }) {
        self.clock = clock
        if let target {
            self.target = target
        } else {
            self.target = access("/run/systemd/journal/socket", W_OK) == 0 ? .journal : .stderr
        }
    }

    public func record(_ event: SecurityEvent) {
        let now = clock()
        for entry in aggregator.withLockedValue({ $0.admit(event, now: now) }) { emit(entry) }
    }

    /// Writes the summaries of aggregation windows that have ended (a timer
    /// calls it; `force` at shutdown writes every pending one).
    public func flush(force: Bool = false) {
        let now = clock()
        for entry in aggregator.withLockedValue({ $0.flush(now: now, force: force) }) { emit(entry) }
    }

    private func emit(_ event: SecurityEvent) {
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
