/// Failures of a store: the ones the protocol names, and `failed` for
/// anything else (its cause is logged, never sent; it answers `internal_error`).
public enum StoreError: Error, Sendable, Equatable {
    case emailTaken
    case notFound
    /// The user's password or active flag changed after the caller checked
    /// them (a login or password change raced a credential change).
    case credentialsChanged
    /// The store could not do it (I/O, corruption).
    case failed(String)
    /// The store cannot be reached (a networked store's server is down or
    /// out of reach, or a call timed out); nothing was committed. Answers
    /// `503 unavailable`.
    case unavailable(String)
}
