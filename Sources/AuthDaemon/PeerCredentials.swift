import AuthServiceCore
import CSystemd
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension PeerCredentials {
    /// Reads the credentials of a connected Unix socket channel.
    static func read(from channel: Channel) -> PeerCredentials {
        guard let provider = channel as? SocketOptionProvider else { return .unknown }
        // On the channel's event loop these futures are already complete.
        let ucredBox = ResultBox<authd_ucred>()
        let ucredFuture: EventLoopFuture<authd_ucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        ucredFuture.whenSuccess { ucredBox.value = $0 }
        guard let ucred = ucredBox.value else { return .unknown }
        var credentials = PeerCredentials(pid: ucred.pid, uid: ucred.uid, gid: ucred.gid, groups: [])
        let groupsBox = ResultBox<authd_peer_groups>()
        let groupsFuture: EventLoopFuture<authd_peer_groups> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERGROUPS))
        groupsFuture.whenSuccess { groupsBox.value = $0 }
        if let groups = groupsBox.value {
            credentials.groups = withUnsafeBytes(of: groups.gids) { raw in
                raw.bindMemory(to: gid_t.self).filter { $0 != 0 }.map { UInt32($0) }
            }
        }
        return credentials
    }
}

/// Carries a value out of a future that completes synchronously.
private final class ResultBox<Value>: @unchecked Sendable {
    var value: Value?
}
