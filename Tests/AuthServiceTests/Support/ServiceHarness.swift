import AuthCore
import AuthCrypto
import AuthServiceCore
import AuthStore
import Foundation
import GRDB
import Testing

#if canImport(AuthPostgres)
    @testable import AuthPostgres
#endif

/// The stores the service tests run against: the in-memory fake (inline
/// or completing later on another thread), the real SQLite store, and the
/// real PostgreSQL store on a fresh database of the test server that
/// scripts/test.sh starts (when AUTHD_TEST_DATABASE_URL names it).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case memoryLater
    case sqlite
    case postgres

    static var allCases: [StoreKind] {
        [.memory, .memoryLater, .sqlite] + (PostgresTestServer.isAvailable ? [.postgres] : [])
    }

    var testDescription: String { rawValue }

    func make() throws -> any CredentialStore {
        switch self {
        case .memory: InMemoryCredentialStore()
        case .memoryLater: InMemoryCredentialStore(completesLater: true)
        case .sqlite: try AuthDatabase(writer: DatabaseQueue(configuration: AuthDatabase.configuration))
        case .postgres: try PostgresTestServer.makeStores(count: 1, feedInterval: .seconds(1))[0]
        }
    }
}

/// Runs jobs at once on the submitting thread, refusing past `capacity`
/// jobs in flight (so `busy` is testable without timing). Except on an
/// event loop (a PostgreSQL store's completion submitting the next job):
/// a job may wait for a store call there, which needs that very loop, so
/// it runs on a Dispatch thread, as on the daemon's worker pools.
final class InlineJobQueue: JobQueue {
    let capacity: Int
    private let running = Guarded(0)
    private let refusing = Guarded(false)

    init(capacity: Int = 1_000) { self.capacity = capacity }

    /// While set, every job is refused as if the queue were full.
    func refuseAll(_ refuse: Bool) { refusing.withLock { $0 = refuse } }

    func submit(_ job: QueuedJob) -> Result<Void, JobRefusal> {
        if refusing.withLock({ $0 }) { return .failure(.full) }
        if job.isAbandoned() {
            job.dropped()
            return .success(())
        }
        running.withLock { $0 += 1 }
        if Self.onEventLoop {
            DispatchQueue.global().async { [running] in
                job.run()
                running.withLock { $0 -= 1 }
            }
            return .success(())
        }
        job.run()
        running.withLock { $0 -= 1 }
        return .success(())
    }

    private static var onEventLoop: Bool {
        #if canImport(AuthPostgres)
            StoreTaskExecutor.onEventLoop
        #else
            false
        #endif
    }

    var depth: Int { 0 }
    var retryAfterEstimate: Int { 1 }
    func updatePerPeerCapacity(_ perPeer: Int) {}
    func drainAndStop(timeout: Double) -> Bool { true }
}

/// HMAC keys held in memory; `rotate` starts a new access key.
final class MemoryKeys: KeyProvider {
    private let sets: Guarded<(access: KeySet, refresh: KeySet)>

    init() {
        sets = Guarded(
            (
                KeySet(current: SigningKey(secret: SecureRandom.bytes(32))),
                KeySet(current: SigningKey(secret: SecureRandom.bytes(32)))
            ))
    }

    var accessKeys: KeySet { sets.withLock { $0.access } }
    var refreshKeys: KeySet { sets.withLock { $0.refresh } }

    func rotate(now: Int64, retention: Int64) throws -> String {
        let key = SigningKey(secret: SecureRandom.bytes(32))
        sets.withLock { sets in
            sets.access = KeySet(current: key, older: sets.access.all.map { $0.retired(at: now) })
        }
        return key.kid
    }

    func publicJWKs(now: Int64, retention: Int64) -> [JSONValue] { [] }
}

/// Keeps every event and log line, for assertions.
final class RecordingSinks: SecurityEventSink, OperationsLog {
    private let recorded = Guarded<[SecurityEvent]>([])
    private let lines = Guarded<[String]>([])

    func record(_ event: SecurityEvent) { recorded.withLock { $0.append(event) } }

    func log(_ level: OperationsLogLevel, _ message: String, metadata: [String: String]) {
        lines.withLock { $0.append("\(level) \(message) \(metadata)") }
    }

    var events: [SecurityEvent] { recorded.withLock { $0 } }
    var logLines: [String] { lines.withLock { $0 } }

    func reasons(of name: SecurityEvent.Name) -> [String] {
        events.filter { $0.name == name }.compactMap(\.reason)
    }
}

/// A clock the test sets.
final class TestClock: Sendable {
    private let seconds = Guarded<Int64>(1_800_000_000)

    var now: Int64 { seconds.withLock { $0 } }
    func advance(_ by: Int64) { seconds.withLock { $0 += by } }

    var serviceClock: ServiceClock {
        ServiceClock(now: { [self] in now }, microseconds: { [self] in now * 1_000_000 })
    }
}

/// One service in process, on a chosen store, with inline queues.
struct ServiceHarness {
    static let root = PeerCredentials(pid: 1, uid: 0, gid: 0, groups: [])
    static let stranger = PeerCredentials(pid: 2, uid: 65_534, gid: 65_534, groups: [])
    static let password = "correct horse battery"

    let service: AuthService
    let store: any CredentialStore
    let sinks = RecordingSinks()
    let clock = TestClock()
    let hashQueue = InlineJobQueue()
    let storeQueue = InlineJobQueue()

    init(_ kind: StoreKind, settings configure: (inout Settings) -> Void = { _ in }) throws {
        var settings = Settings(cores: 2)
        settings.bcryptCost = 4
        configure(&settings)
        store = try kind.make()
        let gate = try LoginGate(
            limits: settings.throttleLimits, maximumWaiters: settings.maxQueue, store: store, log: sinks,
            clock: clock.serviceClock.now)
        service = try AuthService(
            settings: settings, adminGIDs: [], store: store, keys: MemoryKeys(), events: sinks, log: sinks,
            hashQueue: hashQueue, storeQueue: storeQueue, gate: gate, clock: clock.serviceClock)
    }

    /// Calls `method` and waits for its one answer.
    func call(_ method: String, _ params: JSONObject = [:], as peer: PeerCredentials = root) -> Result<
        JSONValue, AuthError
    > {
        call(RPCRequest(id: .int(1), method: method, params: params), as: peer)
    }

    func call(_ request: RPCRequest, as peer: PeerCredentials = root) -> Result<JSONValue, AuthError> {
        let answer = Guarded<[Result<JSONValue, AuthError>]>([])
        let answered = DispatchSemaphore(value: 0)
        service.handle(request, peer: peer) { result in
            answer.withLock { $0.append(result) }
            answered.signal()
        }
        guard answered.wait(timeout: .now() + 10) == .success else { return .failure(.internalError("no answer")) }
        // Exactly one answer: a second would arrive right behind the first.
        Thread.sleep(forTimeInterval: 0.001)
        let all = answer.withLock { $0 }
        precondition(all.count == 1, "\(request.method) answered \(all.count) times")
        return all[0]
    }

    func result(_ method: String, _ params: JSONObject = [:], as peer: PeerCredentials = root) throws -> JSONObject {
        switch call(method, params, as: peer) {
        case .success(let value):
            guard let object = value.objectValue else { throw HarnessError("\(method): not an object") }
            return object
        case .failure(let error): throw HarnessError("\(method) failed: \(error)")
        }
    }

    @discardableResult
    func createUser(_ email: String, password: String = password, role: String = "user") throws -> Int64 {
        let user = try result(
            "user.create", ["email": .string(email), "password": .string(password), "role": .string(role)])
        guard let id = user["id"]?.stringValue.flatMap(Int64.init) else { throw HarnessError("no id") }
        return id
    }

    func login(_ email: String, password: String = password, client: String? = nil) throws -> (
        access: String, refresh: String
    ) {
        var params: JSONObject = ["email": .string(email), "password": .string(password)]
        if let client { params["client"] = .string(client) }
        let answer = try result("auth.login", params)
        guard let access = answer["access_token"]?.stringValue, let refresh = answer["refresh_token"]?.stringValue
        else { throw HarnessError("login answer incomplete") }
        return (access, refresh)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Result where Success == JSONValue, Failure == AuthError {
    /// The error's reason code, or nil for a success.
    var reason: String? {
        if case .failure(let error) = self { return error.reason.rawValue }
        return nil
    }

    var code: Int? {
        if case .failure(let error) = self { return Int(error.code) }
        return nil
    }

    var object: JSONObject? {
        if case .success(let value) = self { return value.objectValue }
        return nil
    }
}
