import AuthCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The other peer of the fairness scenario, in its own process: drops to
/// `uid`, then keeps `depth` logins in flight on 8 connections for
/// `seconds`, and prints "ANSWERED SECONDS" on stdout. Each login names a
/// fresh email and client (as the review's attack did), so no throttle key
/// ever holds it back: every one of them is a hash in the queue.
struct LoginFlood {
    let uid: UInt32
    let socket: String
    let depth: Int
    let seconds: Double

    func run() throws {
        guard setgroups(0, nil) == 0, setgid(uid) == 0, setuid(uid) == 0 else {
            throw BenchError("cannot drop to uid \(uid) (run authbench as root)")
        }
        let connections = 8
        let perConnection = max(1, depth / connections)
        let answered = Mutexed(0)
        let group = DispatchGroup()
        let started = DispatchTime.now().uptimeNanoseconds
        let deadline = started + UInt64(seconds * 1e9)
        for connectionIndex in 0..<connections {
            group.enter()
            Thread.detachNewThread {
                var sequence = 0
                func line() -> [UInt8] {
                    sequence += 1
                    let tag = "\(connectionIndex)-\(sequence)"
                    return Array(
                        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"auth.login\",\"params\":{\"email\":\"flood\(tag)@example.com\",\"password\":\"wrong password\",\"client\":\"c\(tag)\"}}\n"
                            .utf8)
                }
                defer { group.leave() }
                guard let connection = try? PipelinedConnection(path: socket) else { return }
                for _ in 0..<perConnection { connection.send(line()) }
                var count = 0
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    let lines = connection.readLines()
                    count += lines.count
                    // One more for each answer: the queue stays as deep.
                    for _ in lines { connection.send(line()) }
                }
                answered.withLock { $0 += count }
            }
        }
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print("\(answered.withLock { $0 }) \(elapsed)")
    }
}
