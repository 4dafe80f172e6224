import AuthCore
import NIOConcurrencyHelpers
import NIOCore

/// The open connections: who may open one more (`ConnectionAdmission`), and
/// the channels, so shutdown can close them after their answers.
final class ConnectionRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var admission: ConnectionAdmission

    init(limits: ConnectionAdmission.Limits) {
        admission = ConnectionAdmission(limits: limits)
    }

    func updateLimits(_ limits: ConnectionAdmission.Limits) { lock.withLock { admission.limits = limits } }

    /// Registers `channel` if the limits let its peer in.
    func add(_ channel: Channel, uid: UInt32, isAdmin: Bool) -> Bool {
        lock.withLock {
            guard admission.admit(uid: uid, isAdmin: isAdmin) else { return false }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: Channel, uid: UInt32) {
        lock.withLock {
            if channels.removeValue(forKey: ObjectIdentifier(channel)) != nil { admission.release(uid: uid) }
        }
    }

    func closeAll() -> [EventLoopFuture<Void>] {
        let all = lock.withLock { Array(channels.values) }
        return all.map { $0.close() }
    }
}
