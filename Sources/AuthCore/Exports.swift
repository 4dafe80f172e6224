import AuthCrypto

// The JSON model is part of the core's vocabulary (protocol messages and
// token claims are JSON); clients get it without the core through AuthJSON.
@_exported import AuthJSON

/// The password schemes, named where the core's rules take them
/// (`PasswordPolicy`, `Settings`), for users of the core without AuthCrypto.
public typealias PasswordScheme = PasswordHashing.Scheme
