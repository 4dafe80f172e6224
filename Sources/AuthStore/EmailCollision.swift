/// The same email in two spellings that are one after NFC normalisation:
/// rows from before normalisation, kept both until an operator resolves it.
public struct EmailCollision: Sendable, Equatable {
    public var normalized: String
    public var userIDs: [Int64]
}
