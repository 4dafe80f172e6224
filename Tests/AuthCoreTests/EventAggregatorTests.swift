import AuthCore
import Testing

@Suite struct EventAggregatorTests {
    private func invalid(_ uid: UInt32) -> SecurityEvent {
        SecurityEvent(.tokenInvalid, "Access token refused", peerUID: uid, peerPID: 1, reason: "malformed")
    }

    @Test func pastTheThresholdOnePeersEventsAreCountedNotLogged() {
        var aggregator = EventAggregator(threshold: 50, window: 10)
        var written: [SecurityEvent] = []
        for _ in 0..<300 { written += aggregator.admit(invalid(65534), now: 100) }
        #expect(written.count == 50)
        // Another peer's event in the middle of the flood is written at once.
        #expect(aggregator.admit(invalid(1001), now: 101).count == 1)
        // Once the window ends, one summary stands for the other 250.
        #expect(aggregator.flush(now: 105).isEmpty)
        let summaries = aggregator.flush(now: 110)
        #expect(summaries.count == 1)
        #expect(summaries.first?.count == 250)
        #expect(summaries.first?.peerUID == 65534)
        #expect(summaries.first?.fields.contains { $0.0 == "AUTHD_COUNT" && $0.1 == "250" } == true)
    }

    @Test func aPeerStillFloodingStaysAggregatedAndQuietPeersAreForgotten() {
        var aggregator = EventAggregator(threshold: 5, window: 10)
        for _ in 0..<20 { _ = aggregator.admit(invalid(7), now: 0) }
        _ = aggregator.flush(now: 10)
        // The next window starts aggregated: nothing written one by one.
        var written: [SecurityEvent] = []
        for _ in 0..<3 { written += aggregator.admit(invalid(7), now: 11) }
        #expect(written.isEmpty)
        #expect(aggregator.flush(now: 21).first?.count == 3)
        // A window under the threshold ends aggregation for that pair.
        #expect(aggregator.flush(now: 40).isEmpty)
        #expect(aggregator.admit(invalid(7), now: 41).count == 1)
    }

    @Test func reuseAndLockoutsAreNeverAggregated() {
        var aggregator = EventAggregator(threshold: 1, window: 10)
        for name in [SecurityEvent.Name.tokenReuse, .loginLock] {
            for _ in 0..<20 {
                #expect(aggregator.admit(SecurityEvent(name, "m", peerUID: 5), now: 0).count == 1)
            }
        }
        // Events without a peer (start-up, sweeper) neither.
        for _ in 0..<5 { #expect(aggregator.admit(SecurityEvent(.sessionExpired, "swept"), now: 0).count == 1) }
    }

    @Test func fieldsAreCappedAt256BytesOnACharacterBoundary() {
        let event = SecurityEvent(
            .loginFail, String(repeating: "é", count: 1000), peerUID: 1, client: String(repeating: "c", count: 60_000))
        for (key, value) in event.fields {
            #expect(value.utf8.count <= SecurityEvent.maximumFieldBytes, "\(key)")
        }
        let message = event.fields.first { $0.0 == "MESSAGE" }!.1
        #expect(message == String(repeating: "é", count: 128))
    }
}
