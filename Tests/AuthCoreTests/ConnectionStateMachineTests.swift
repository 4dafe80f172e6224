import AuthCore
import Testing

/// The connection's rules without a channel: times are passed in, lines
/// are plain strings.
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<String>

    /// Feeds a line; returns it when it may start now (and starts it).
    private func arrive(_ machine: inout Machine, _ line: String, at now: Int64 = 0) -> String? {
        guard let ready = machine.lineArrived(line, now: now) else { return nil }
        machine.requestStarted()
        return ready
    }

    @Test func pastTheInFlightLimitLinesWaitInOrderAndReadingPauses() {
        var machine = Machine(maximumInFlight: 2, idleTimeout: 300, now: 0)
        #expect(arrive(&machine, "a") == "a")
        #expect(arrive(&machine, "b") == "b")
        #expect(arrive(&machine, "c") == nil)
        #expect(arrive(&machine, "d") == nil)
        #expect(machine.waitingLines == 2)
        #expect(machine.readRequested(writable: true) == false)
        // One answer: exactly one waiting line may start, in order.
        machine.requestCompleted(now: 1)
        #expect(machine.nextWaitingLine() == "c")
        machine.requestStarted()
        #expect(machine.nextWaitingLine() == nil)
        #expect(machine.shouldResumeReading(writable: true) == false)
        machine.requestCompleted(now: 1)
        #expect(machine.nextWaitingLine() == "d")
        machine.requestStarted()
        machine.requestCompleted(now: 1)
        // Nothing waits and there is room: reading resumes, once.
        #expect(machine.shouldResumeReading(writable: true) == true)
        #expect(machine.shouldResumeReading(writable: true) == false)
        #expect(machine.readRequested(writable: true) == true)
    }

    @Test func aLineBehindWaitingOnesWaitsEvenWhenThereIsRoom() {
        var machine = Machine(maximumInFlight: 1, idleTimeout: 300, now: 0)
        #expect(arrive(&machine, "a") == "a")
        #expect(arrive(&machine, "b") == nil)
        machine.requestCompleted(now: 0)
        // "c" arrives before "b" was taken: it queues behind it.
        #expect(machine.lineArrived("c", now: 0) == nil)
        #expect(machine.nextWaitingLine() == "b")
    }

    @Test func anUnwritableSocketPausesReadingUntilItDrains() {
        var machine = Machine(maximumInFlight: 8, idleTimeout: 300, now: 0)
        #expect(machine.readRequested(writable: false) == false)
        #expect(machine.shouldResumeReading(writable: false) == false)
        #expect(machine.shouldResumeReading(writable: true) == true)
    }

    @Test func afterAHalfCloseEverythingReadIsAnsweredThenItCloses() {
        var machine = Machine(maximumInFlight: 1, idleTimeout: 300, now: 0)
        #expect(arrive(&machine, "a") == "a")
        #expect(arrive(&machine, "b") == nil)
        machine.inputDidClose()
        #expect(machine.shouldCloseWhenDone(now: 2) == false)
        machine.requestCompleted(now: 1)
        #expect(machine.shouldCloseWhenDone(now: 2) == false)  // "b" still waits
        #expect(machine.nextWaitingLine() == "b")
        machine.requestStarted()
        machine.requestCompleted(now: 2)
        #expect(machine.shouldCloseWhenDone(now: 2) == true)
        #expect(machine.isClosing)
        #expect(machine.shouldCloseWhenDone(now: 2) == false)  // once
    }

    @Test func idleMeansNoLineAndNoAnswerForTheTimeout() {
        var machine = Machine(maximumInFlight: 4, idleTimeout: 10, now: 100)
        #expect(machine.idleCheck(now: 109) == false)
        #expect(machine.lineArrived("a", now: 105) == "a")
        machine.requestStarted()
        // Waiting for an answer is not idle, however long it takes.
        #expect(machine.idleCheck(now: 500) == false)
        machine.requestCompleted(now: 500)
        #expect(machine.idleCheck(now: 509) == false)
        #expect(machine.idleCheck(now: 510) == true)
        #expect(machine.isClosing)
        // Nothing more is taken once closing.
        #expect(machine.lineArrived("late", now: 511) == nil)
        #expect(machine.waitingLines == 0)
    }

    @Test func aStalledLineIsIdleToo() {
        // Bytes of an unfinished line never reach the machine: only whole
        // lines count as activity.
        var machine = Machine(maximumInFlight: 4, idleTimeout: 3, now: 0)
        #expect(machine.idleCheck(now: 3) == true)
    }

    @Test func anErrorClosesAndStopsTakingLines() {
        var machine = Machine(maximumInFlight: 4, idleTimeout: 3, now: 0)
        machine.closeAfterError(now: 0)
        #expect(machine.lineArrived("x", now: 0) == nil)
        #expect(machine.shouldResumeReading(writable: true) == false)
    }

    @Test func aCloseThePeerNeverLetsFinishIsForcedAfterTheTimeout() {
        // Half-closed, answered, but the peer never reads: the answers stay
        // queued and the close waits for them, though not for ever.
        var machine = Machine(maximumInFlight: 4, idleTimeout: 10, now: 0)
        #expect(arrive(&machine, "a") == "a")
        machine.inputDidClose()
        machine.requestCompleted(now: 5)
        #expect(machine.shouldCloseWhenDone(now: 5) == true)
        #expect(machine.idleCheck(now: 14) == false)
        #expect(machine.idleCheck(now: 15) == true)
        #expect(machine.lineArrived("late", now: 15) == nil)
    }
}
