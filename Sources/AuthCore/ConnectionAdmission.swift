/// Which new connections are let in, as a pure count: at most `maximum` in
/// all, at most `perPeer` from one uid, and the last `adminReserved` places
/// only for admin peers, so no peer (nor many) can take every descriptor and
/// lock root out.
public struct ConnectionAdmission: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maximum: Int
        public var perPeer: Int
        public var adminReserved: Int

        public init(maximum: Int, perPeer: Int, adminReserved: Int) {
            self.maximum = maximum
            self.perPeer = perPeer
            self.adminReserved = adminReserved
        }
    }

    public var limits: Limits
    public private(set) var total = 0
    private var perUID: [UInt32: Int] = [:]

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Counts a new connection from `uid` in, or refuses it (`false`).
    public mutating func admit(uid: UInt32, isAdmin: Bool) -> Bool {
        let fromPeer = perUID[uid, default: 0]
        guard fromPeer < limits.perPeer, total < limits.maximum else { return false }
        if !isAdmin && total >= limits.maximum - limits.adminReserved { return false }
        perUID[uid] = fromPeer + 1
        total += 1
        return true
    }

    /// A connection that was admitted has closed.
    public mutating func release(uid: UInt32) {
        guard let count = perUID[uid] else { return }
        if count <= 1 { perUID.removeValue(forKey: uid) } else { perUID[uid] = count - 1 }
        total -= 1
    }

    public func connections(uid: UInt32) -> Int { perUID[uid, default: 0] }
}
