import AuthCore
import Testing

@Suite struct LoginThrottleTests {
    let limits = LoginThrottle.Limits(accountMaxFailures: 5, clientMaxFailures: 50, window: 900)
    let account = LoginThrottle.accountKey("a@example.com")
    let client = LoginThrottle.clientKey(peerUID: 1000, reported: nil)

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
        var running = 0
        for _ in 0..<10 {
            switch throttle.begin(account: account, client: client, now: 100) {
            case .proceed: running += 1
            case .wait: waiting += 1
            case .limited: Issue.record("a correct login was refused")
            }
        }
        #expect(running == 5 && waiting == 5)
        // Every running one succeeds in turn; each time, the waiting ones ask
        // again. All ten run in the end, and none is ever refused.
        var finished = 0
        while running > 0 {
            _ = throttle.finish(account: account, client: client, outcome: .succeeded, now: 100)
            running -= 1
            finished += 1
            var stillWaiting = 0
            for _ in 0..<waiting {
                switch throttle.begin(account: account, client: client, now: 100) {
                case .proceed: running += 1
                case .wait: stillWaiting += 1
                case .limited: Issue.record("a correct login was refused")
                }
            }
            waiting = stillWaiting
        }
        #expect(finished == 10)
        #expect(waiting == 0)
        #expect(throttle.failures(account, now: 100) == 0)
    }

    /// The rule a shared store applies to its own counts of failures and
    /// pending attempts is `begin`'s: limited past the limit, wait while the
    /// pending ones could reach it, else proceed; and deciding reserves
    /// nothing.
    @Test func theSharedDecisionIsBeginsRuleOnCountsHeldElsewhere() {
        let counters = [account: LoginThrottle.Counter(failures: 3, windowStart: 100)]
        let throttle = LoginThrottle(limits: limits, counters: counters)
        func decide(_ onAccount: Int, _ onClient: Int, now: Int64 = 200) -> LoginThrottle.Decision {
            throttle.decision(
                account: account, client: client, pendingOnAccount: onAccount, pendingOnClient: onClient, now: now)
        }
        #expect(decide(0, 0) == .proceed)
        #expect(decide(1, 1) == .proceed)
        #expect(decide(2, 0) == .wait)
        #expect(decide(0, 50) == .wait)
        // The window ended: the old failures no longer count.
        #expect(decide(4, 0, now: 1_000) == .proceed)
        var adopted = throttle
        adopted.adopt(account, LoginThrottle.Counter(failures: 5, windowStart: 100))
        #expect(
            adopted.decision(account: account, client: client, pendingOnAccount: 0, pendingOnClient: 0, now: 200)
                == .limited(retryAfter: 800))
        adopted.adopt(account, nil)
        #expect(adopted.failures(account, now: 200) == 0)
    }

    @Test func theUIDKeyNamesTheHostOnlyWhenGivenOne() {
        #expect(LoginThrottle.clientKey(peerUID: 1001, reported: nil) == "client:uid:1001")
        #expect(LoginThrottle.clientKey(peerUID: 1001, reported: nil, host: "a") == "client:host:a:uid:1001")
        #expect(
            LoginThrottle.clientKey(peerUID: 1001, reported: nil, host: "a")
                != LoginThrottle.clientKey(peerUID: 1001, reported: nil, host: "b"))
        // A reported client stays scoped to the peer that reported it, and
        // on a shared store to its host.
        #expect(LoginThrottle.clientKey(peerUID: 1001, reported: "ip") == "client:peer:1001:ip")
        #expect(LoginThrottle.clientKey(peerUID: 1001, reported: "ip", host: "a") == "client:host:a:peer:1001:ip")
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
        let elsewhere = LoginThrottle.clientKey(peerUID: 2000, reported: nil)
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

    @Test func aSignedTokenThatIsNotTheSessionsCurrentOneIsReuse() {
        // The store keeps only the current token; the caller has checked the
        // signature, so an unknown token of a live session was spent.
        #expect(RefreshRotation.decide(token: nil, session: live, now: 10) == .reuse)
        // Issued before or in the same second as the current one: spent.
        #expect(
            RefreshRotation.decide(token: nil, session: live, now: 10, presentedIssuedAt: 5, currentIssuedAt: 5)
                == .reuse)
    }

    @Test func aTokenNewerThanTheCurrentOneIsInvalidNotReuse() {
        // The store lost the rotation that issued it (power loss, restore).
        #expect(
            RefreshRotation.decide(token: nil, session: live, now: 10, presentedIssuedAt: 9, currentIssuedAt: 5)
                == .invalid("token newer than the session's current one"))
    }

    @Test func unusableTokensAreInvalid() {
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

    @Test func aTokenSpentWithinTheGraceWindowIsAReplayWhileEveryConditionHolds() {
        let grace = RefreshRotation.GraceState(spentAt: 100, keptUntil: 110, replays: 0, successorIsCurrent: true)
        func decide(
            _ grace: RefreshRotation.GraceState?, window: Int64 = 10, now: Int64 = 105,
            session: RefreshRotation.SessionState? = nil
        )
            -> RefreshRotation.Decision
        {
            RefreshRotation.decide(token: nil, session: session ?? live, now: now, grace: grace, graceWindow: window)
        }
        #expect(decide(grace) == .replay)
        // A host whose clock is behind the one that spent it.
        #expect(decide(grace, now: 95) == .replay)
        #expect(decide(grace, now: 109) == .replay)
        // Each condition failing alone makes it reuse, as without a window.
        #expect(decide(grace, now: 110) == .reuse)
        #expect(decide(grace, window: 0) == .reuse)
        // The shorter of the window it was spent under and the one now.
        #expect(decide(grace, window: 60, now: 110) == .reuse)
        #expect(decide(grace, window: 3, now: 103) == .reuse)
        #expect(decide(grace, window: 3, now: 102) == .replay)
        // Spent here, whatever its iat says (the host that issued it has a
        // clock ahead): replay, and past the window reuse, never "newer".
        #expect(
            RefreshRotation.decide(
                token: nil, session: live, now: 105, presentedIssuedAt: 200, currentIssuedAt: 100, grace: grace,
                graceWindow: 10) == .replay)
        #expect(
            RefreshRotation.decide(
                token: nil, session: live, now: 115, presentedIssuedAt: 200, currentIssuedAt: 100, grace: grace,
                graceWindow: 10) == .reuse)
        #expect(decide(nil) == .reuse)
        var used = grace
        used.successorIsCurrent = false
        #expect(decide(used) == .reuse)
        var often = grace
        often.replays = RefreshRotation.maximumReplays - 1
        #expect(decide(often) == .replay)
        often.replays = RefreshRotation.maximumReplays
        #expect(decide(often) == .reuse)
        // A session ended is invalid before any grace.
        var revoked = live
        revoked.revoked = true
        #expect(decide(grace, session: revoked) == .invalid("session revoked"))
        // Logging out with a graced token is a logout, not reuse.
        #expect(
            RefreshRotation.decideLogout(token: nil, session: live, now: 105, grace: grace, graceWindow: 10) == .revoke)
        #expect(
            RefreshRotation.decideLogout(token: nil, session: live, now: 110, grace: grace, graceWindow: 10) == .reuse)
    }
}

@Suite struct ClientKeyTests {
    @Test func aReportedClientNeverEqualsADerivedKey() {
        // uid 65534 reporting "uid:0" must not reach root's own budget.
        #expect(
            LoginThrottle.clientKey(peerUID: 65534, reported: "uid:0")
                != LoginThrottle.clientKey(peerUID: 0, reported: nil))
        #expect(
            LoginThrottle.clientKey(peerUID: 65534, reported: "client:uid:0")
                != LoginThrottle.clientKey(peerUID: 0, reported: nil))
    }

    @Test func reportedClientsAreScopedToThePeerThatReportedThem() {
        #expect(
            LoginThrottle.clientKey(peerUID: 1001, reported: "10.0.0.1")
                != LoginThrottle.clientKey(peerUID: 1002, reported: "10.0.0.1"))
        #expect(
            LoginThrottle.clientKey(peerUID: 1001, reported: "10.0.0.1")
                == LoginThrottle.clientKey(peerUID: 1001, reported: "10.0.0.1"))
    }
}

@Suite struct RefreshRateLimiterTests {
    @Test func atMostTheLimitPerSessionPerSecond() {
        var limiter = RefreshRateLimiter(limit: 3)
        for _ in 0..<3 { #expect(limiter.admit(sessionID: "a", now: 100) == .allowed) }
        #expect(limiter.admit(sessionID: "a", now: 100) == .limited(retryAfter: 1))
        // Another session has its own budget; the next second starts over.
        #expect(limiter.admit(sessionID: "b", now: 100) == .allowed)
        #expect(limiter.admit(sessionID: "a", now: 101) == .allowed)
        limiter.prune(now: 102)
        #expect(limiter.trackedSessions == 0)
    }
}

@Suite struct LoginFailureTests {
    @Test func theFirstFailedCheckNamesTheReason() {
        #expect(
            LoginFailure.reason(emailValid: false, userFound: false, passwordUsable: true, matched: false)
                == "invalid_email")
        #expect(
            LoginFailure.reason(emailValid: true, userFound: false, passwordUsable: true, matched: false)
                == "unknown_user")
        #expect(
            LoginFailure.reason(emailValid: true, userFound: true, passwordUsable: false, matched: false)
                == "password_too_long")
        #expect(
            LoginFailure.reason(emailValid: true, userFound: true, passwordUsable: true, matched: false)
                == "wrong_password")
        #expect(
            LoginFailure.reason(emailValid: true, userFound: true, passwordUsable: true, matched: true)
                == "account_inactive")
    }
}

@Suite struct LogoutRuleTests {
    let live = RefreshRotation.SessionState(revoked: false, expiresAt: 1000, userActive: true)
    let current = RefreshRotation.TokenState(spent: false, expiresAt: 1000)

    @Test func anExpiredSessionOrTokenOrAnInactiveUserMayStillLogOut() {
        var inactive = live
        inactive.userActive = false
        #expect(RefreshRotation.decideLogout(token: current, session: inactive, now: 10) == .revoke)
        #expect(
            RefreshRotation.decideLogout(token: .init(spent: false, expiresAt: 5), session: live, now: 10) == .revoke)
        #expect(RefreshRotation.decideLogout(token: current, session: live, now: 1000) == .revoke)
    }

    @Test func aGoneOrRevokedSessionIsInvalidAndReuseIsReuse() {
        var revoked = live
        revoked.revoked = true
        #expect(RefreshRotation.decideLogout(token: current, session: nil, now: 10) == .invalid("no such session"))
        #expect(RefreshRotation.decideLogout(token: current, session: revoked, now: 10) == .invalid("session revoked"))
        #expect(RefreshRotation.decideLogout(token: nil, session: live, now: 10) == .reuse)
    }
}

@Suite struct KeyRetentionTests {
    @Test func aRetiredKeyVerifiesForTheRetentionThenNot() {
        #expect(KeyRetention.stillVerifies(retiredAt: nil, retention: 930, now: .max))
        #expect(KeyRetention.stillVerifies(retiredAt: 100, retention: 930, now: 1030))
        #expect(!KeyRetention.stillVerifies(retiredAt: 100, retention: 930, now: 1031))
        #expect(KeyRetention.stillVerifies(retiredAt: .max, retention: 930, now: .max))
    }
}
