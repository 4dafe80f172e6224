/// Who is on the other end of a connection (from `SO_PEERCRED` and
/// `SO_PEERGROUPS`, read by the transport once when the connection opens).
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups (gid 0 cannot be told from padding and is left out).
    public var groups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    public static let unknown = PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max, groups: [])
}
