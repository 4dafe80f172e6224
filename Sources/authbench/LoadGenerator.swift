import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Latency samples (microseconds) and counts of one measured run.
struct RunResult {
    var name: String
    var requests = 0
    var errors = 0
    var seconds = 0.0
    var latencies: [Int] = []

    var throughput: Double { seconds > 0 ? Double(requests) / seconds : 0 }

    func percentile(_ quantile: Double) -> Int {
        guard !latencies.isEmpty else { return 0 }
        let sorted = latencies.sorted()
        let index = min(sorted.count - 1, Int((Double(sorted.count) * quantile).rounded(.up)) - 1)
        return sorted[max(0, index)]
    }

    mutating func merge(_ other: RunResult) {
        requests += other.requests
        errors += other.errors
        latencies += other.latencies
    }
}

/// A blocking Unix-socket client that keeps `depth` requests in flight and
/// matches answers by id, for one thread of a load run.
final class PipelinedConnection {
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var pending: [UInt8] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        // On failure deinit closes the descriptor (the object is fully initialised).
        guard result == 0 else { throw BenchError("cannot connect to \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written <= 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }

    /// Reads until at least one whole line is there; returns the lines.
    func readLines() -> [ArraySlice<UInt8>] {
        while true {
            if let lines = takeLines(), !lines.isEmpty { return lines }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                if count < 0 && errno == EINTR { continue }
                return []
            }
            pending.append(contentsOf: buffer[0..<count])
        }
    }

    private func takeLines() -> [ArraySlice<UInt8>]? {
        guard let last = pending.lastIndex(of: 0x0A) else { return nil }
        let complete = Array(pending[...last])
        pending.removeSubrange(...last)
        return complete.split(separator: 0x0A)
    }

    /// The `"id":N` of an answer line, found by a scan (no JSON parse).
    static func id(in line: ArraySlice<UInt8>) -> Int? {
        let marker = Array("\"id\":".utf8)
        var index = line.startIndex
        while index + marker.count <= line.endIndex {
            if line[index..<(index + marker.count)].elementsEqual(marker) {
                var value = 0
                var cursor = index + marker.count
                var found = false
                while cursor < line.endIndex, line[cursor] >= 0x30, line[cursor] <= 0x39 {
                    value = value * 10 + Int(line[cursor] - 0x30)
                    cursor += 1
                    found = true
                }
                return found ? value : nil
            }
            index += 1
        }
        return nil
    }

    private static let errorMarker = Array("\"error\":".utf8)

    /// Whether an answer line is an error (a scan, no allocation).
    static func isError(_ line: ArraySlice<UInt8>) -> Bool {
        let marker = errorMarker
        guard line.count >= marker.count else { return false }
        var index = line.startIndex
        while index + marker.count <= line.endIndex {
            if line[index] == marker[0] && line[index..<(index + marker.count)].elementsEqual(marker) { return true }
            index += 1
        }
        return false
    }
}

/// Runs `connections` threads, each keeping `depth` requests in flight for
/// `seconds`, building request `n` of a thread with `request(thread, id)`.
/// With `perConnectionRate`, each connection sends at that fixed rate
/// (an open-loop load, depth 1) instead of as fast as answers come back.
func runLoad(
    name: String, socket: String, connections: Int, depth: Int, seconds: Double, perConnectionRate: Double? = nil,
    request: @escaping @Sendable (_ thread: Int, _ id: Int) -> [UInt8]
) throws -> RunResult {
    let results = Mutexed<[RunResult]>([])
    let failures = Mutexed<[String]>([])
    let group = DispatchGroup()
    let startLine = DispatchSemaphore(value: 0)
    for thread in 0..<connections {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            var result = RunResult(name: name)
            do {
                let connection = try PipelinedConnection(path: socket)
                startLine.wait()
                var sentAt: [Int: UInt64] = [:]
                var nextID = 1
                let startedAt = DispatchTime.now().uptimeNanoseconds
                let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
                for _ in 0..<depth {
                    sentAt[nextID] = DispatchTime.now().uptimeNanoseconds
                    connection.send(request(thread, nextID))
                    nextID += 1
                }
                while !sentAt.isEmpty {
                    let lines = connection.readLines()
                    if lines.isEmpty { break }
                    let now = DispatchTime.now().uptimeNanoseconds
                    var batch: [UInt8] = []
                    for line in lines {
                        guard let id = PipelinedConnection.id(in: line), let start = sentAt.removeValue(forKey: id)
                        else { continue }
                        result.requests += 1
                        result.latencies.append(Int((now - start) / 1000))
                        if PipelinedConnection.isError(line) { result.errors += 1 }
                        if now < deadline {
                            if let rate = perConnectionRate {
                                // Sleep to the next slot of the fixed schedule.
                                let slot = UInt64(Double(nextID - 1) / rate * 1e9)
                                let due = startedAt + slot
                                let current = DispatchTime.now().uptimeNanoseconds
                                if due > current { usleep(UInt32((due - current) / 1000)) }
                                sentAt[nextID] = DispatchTime.now().uptimeNanoseconds
                            } else {
                                sentAt[nextID] = now
                            }
                            batch += request(thread, nextID)
                            nextID += 1
                        }
                    }
                    if !batch.isEmpty { connection.send(batch) }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
            results.withLock { $0.append(result) }
        }
    }
    let started = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<connections { startLine.signal() }
    group.wait()
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    if let failure = failures.withLock({ $0.first }) { throw BenchError(failure) }
    var total = RunResult(name: name)
    for result in results.withLock({ $0 }) { total.merge(result) }
    total.seconds = elapsed
    return total
}

final class Mutexed<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
