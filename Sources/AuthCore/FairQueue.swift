/// A FIFO per peer, served in turn (round robin), with a bound on the whole
/// and on each peer's share: one peer that queues hundreds of jobs delays
/// another peer's next job by at most one job per busy peer, and past its
/// share only that peer is refused. Pure; the caller locks.
public struct FairQueue<Element> {
    public enum Refusal: Error, Sendable, Equatable {
        /// The queue as a whole is full.
        case full
        /// This peer already has its share queued; others may still queue.
        case peerFull
    }

    public let capacity: Int
    public var perPeerCapacity: Int
    public private(set) var count = 0
    private var queues: [UInt32: Queue] = [:]
    /// Peers with queued jobs, in the order they are served.
    private var turn: [UInt32] = []
    private var nextTurn = 0

    private struct Queue {
        var items: [Element?] = []
        var head = 0
        var count: Int { items.count - head }

        mutating func popFirst() -> Element? {
            guard head < items.count else { return nil }
            let item = items[head]
            items[head] = nil
            head += 1
            if head > 64 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    public init(capacity: Int, perPeerCapacity: Int) {
        self.capacity = capacity
        self.perPeerCapacity = perPeerCapacity
    }

    public func count(peer: UInt32) -> Int { queues[peer]?.count ?? 0 }

    public mutating func enqueue(_ element: Element, peer: UInt32) throws(Refusal) {
        guard count < capacity else { throw .full }
        let queued = queues[peer]?.count ?? 0
        guard queued < perPeerCapacity else { throw .peerFull }
        if queued == 0 { turn.append(peer) }
        // Mutated in place (a copy would copy the whole queue each time).
        queues[peer, default: Queue()].items.append(element)
        count += 1
    }

    /// The next job: the oldest of the peer whose turn it is.
    public mutating func dequeue() -> Element? {
        guard !turn.isEmpty else { return nil }
        if nextTurn >= turn.count { nextTurn = 0 }
        let peer = turn[nextTurn]
        let element = queues[peer]?.popFirst() ?? nil
        count -= 1
        if queues[peer]?.count ?? 0 == 0 {
            queues.removeValue(forKey: peer)
            turn.remove(at: nextTurn)
        } else {
            nextTurn += 1
        }
        return element
    }
}
