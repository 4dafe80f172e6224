#if canImport(Glibc)
    import Glibc
#endif

/// A lock for state kept beside it (the service's classes hold several
/// fields under one lock). A pthread mutex, not `Synchronization.Mutex`:
/// ThreadSanitizer intercepts pthread locks, but `Mutex` takes its contended
/// path in the standard library (`_lockSlow`, not instrumented), so under
/// load TSan missed the acquire and reported races on guarded fields (seen
/// in `TransportTests.manyConcurrentConnections` under TSan).
public final class ServiceLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value under a `ServiceLock`, used like `Mutex`: `withLock { $0 ... }`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = ServiceLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try lock.withLock { try body(&value) }
    }
}
