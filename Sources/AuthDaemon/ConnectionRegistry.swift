import NIOConcurrencyHelpers
import NIOCore

/// The open connections, so shutdown can close them after their answers.
final class ConnectionRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    private var channels: [ObjectIdentifier: Channel] = [:]

    func add(_ channel: Channel) { lock.withLock { channels[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: Channel) { lock.withLock { _ = channels.removeValue(forKey: ObjectIdentifier(channel)) } }
    var count: Int { lock.withLock { channels.count } }

    func closeAll() -> [EventLoopFuture<Void>] {
        let all = lock.withLock { Array(channels.values) }
        return all.map { $0.close() }
    }
}
