import AuthCore
import Testing

@Suite struct LoginThrottleTests {
    let limits = LoginThrottle.Limits(accountMaxFailures: 5, clientMaxFailures: 50, window: 900)
    let account = LoginThrottle.accountKey("a@example.com")
    let client = LoginThrottle.clientKey("uid:1000")

    @Test func tenConcurrentWrongPasswordsGiveFiveFailuresAndFiveLimits() {
        var throttle = LoginThrottle(limits: limits)
        var decisions: [LoginThrottle.Decision] = []
        for _ in 0..<10 { decisions.append(throttle.begin(account: account, client: client, now: 100)) }
        #expect(decisions.filter { $0 == .proceed }.count == 5)
        #expect(decisions.filter { $0 == .wait }.count == 5)
        for _ in 0..<5 { _ = throttle.finish(account: account, client: client, outcome: .failed, now: 101) }
        // The waiting five ask again: every one is now limited, until the
        // window that began with the first failure (at 101) ends.
        for _ in 0..<5 {
            #expect(throttle.begin(account: account, client: client, now: 102) == .limited(retryAfter: 899))
        }
    }

    @Test func concurrentCorrectLoginsAreNeverRefused() {
        var throttle = LoginThrottle(limits: limits)
        var waiting = 0
        for _ in 0..<10 where throttle.begin(account: account, client: client, now: 100) == .wait { waiting += 1 }
        #expect(waiting == 5)
        // The first success clears the account; the waiting ones may go on.
        _ = throttle.finish(account: account, client: client, outcome: .succeeded, now: 100)
        var proceeded = 0
        for _ in 0..<waiting where throttle.begin(account: account, client: client, now: 100) == .proceed {
            proceeded += 1
        }
        #expect(proceeded >= 1)
        #expect(throttle.failures(account, now: 100) == 0)
    }

    @Test func aSuccessClearsTheAccountButNotTheClient() {
        var throttle = LoginThrottle(limits: limits)
        for _ in 0..<3 {
            _ = throttle.begin(account: account, client: client, now: 0)
            _ = throttle.finish(account: account, client: client, outcome: .failed, now: 0)
        }
        #expect(throttle.failures(account, now: 0) == 3)
        _ = throttle.begin(account: account, client: client, now: 0)
        let changes = throttle.finish(account: account, client: client, outcome: .succeeded, now: 0)
        #expect(changes == [LoginThrottle.Change(key: account, counter: nil)])
        #expect(throttle.failures(account, now: 0) == 0)
        #expect(throttle.failures(client, now: 0) == 3)
    }

    @Test func theWindowEndsAndCountsStartOver() {
        var throttle = LoginThrottle(limits: limits)
        for _ in 0..<5 {
            _ = throttle.begin(account: account, client: client, now: 1000)
            _ = throttle.finish(account: account, client: client, outcome: .failed, now: 1000)
        }
        #expect(throttle.begin(account: account, client: client, now: 1899) == .limited(retryAfter: 1))
        #expect(throttle.begin(account: account, client: client, now: 1900) == .proceed)
        let changes = throttle.finish(account: account, client: client, outcome: .failed, now: 1900)
        #expect(changes.first?.counter == LoginThrottle.Counter(failures: 1, windowStart: 1900))
    }

    @Test func theClientLimitSpansAccounts() {
        var throttle = LoginThrottle(limits: .init(accountMaxFailures: 5, clientMaxFailures: 3, window: 60))
        for index in 0..<3 {
            let other = LoginThrottle.accountKey("user\(index)@example.com")
            #expect(throttle.begin(account: other, client: client, now: 0) == .proceed)
            _ = throttle.finish(account: other, client: client, outcome: .failed, now: 0)
        }
        #expect(throttle.begin(account: account, client: client, now: 10) == .limited(retryAfter: 50))
        let elsewhere = LoginThrottle.clientKey("uid:2000")
        #expect(throttle.begin(account: account, client: elsewhere, now: 10) == .proceed)
    }

    @Test func abandonedAttemptsOnlyReleaseTheirPlace() {
        var throttle = LoginThrottle(limits: .init(accountMaxFailures: 1, clientMaxFailures: 50, window: 60))
        #expect(throttle.begin(account: account, client: client, now: 0) == .proceed)
        #expect(throttle.begin(account: account, client: client, now: 0) == .wait)
        #expect(throttle.finish(account: account, client: client, outcome: .abandoned, now: 0).isEmpty)
        #expect(throttle.begin(account: account, client: client, now: 0) == .proceed)
    }

    @Test func countersLoadedFromStorageApply() {
        var throttle = LoginThrottle(
            limits: limits, counters: [account: .init(failures: 5, windowStart: 100)])
        #expect(throttle.begin(account: account, client: client, now: 200) == .limited(retryAfter: 800))
    }

    @Test func pruningDropsEndedWindows() {
        var throttle = LoginThrottle(
            limits: limits,
            counters: [account: .init(failures: 2, windowStart: 0), client: .init(failures: 1, windowStart: 500)])
        #expect(throttle.pruneExpired(now: 900) == [account])
        #expect(throttle.counters.keys.sorted() == [client])
    }
}

@Suite struct RefreshRotationTests {
    let live = RefreshRotation.SessionState(revoked: false, expiresAt: 1000, userActive: true)

    @Test func aFreshTokenOfALiveSessionRotates() {
        #expect(
            RefreshRotation.decide(token: .init(spent: false, expiresAt: 1000), session: live, now: 10) == .rotate)
    }

    @Test func onlyASpentTokenOfALiveSessionIsReuse() {
        #expect(RefreshRotation.decide(token: .init(spent: true, expiresAt: 1000), session: live, now: 10) == .reuse)
        var revoked = live
        revoked.revoked = true
        #expect(
            RefreshRotation.decide(token: .init(spent: true, expiresAt: 1000), session: revoked, now: 10)
                == .invalid("session revoked"))
    }

    @Test func unusableTokensAreInvalid() {
        #expect(RefreshRotation.decide(token: nil, session: live, now: 10) == .invalid("unknown token"))
        #expect(
            RefreshRotation.decide(token: .init(spent: false, expiresAt: 5), session: live, now: 10)
                == .invalid("token expired"))
        #expect(
            RefreshRotation.decide(token: .init(spent: false, expiresAt: 1000), session: nil, now: 10)
                == .invalid("no such session"))
        #expect(
            RefreshRotation.decide(token: .init(spent: false, expiresAt: 1000), session: live, now: 1000)
                == .invalid("session expired"))
        var inactive = live
        inactive.userActive = false
        #expect(
            RefreshRotation.decide(token: .init(spent: false, expiresAt: 1000), session: inactive, now: 10)
                == .invalid("account inactive"))
    }
}
