// The JSON model is part of the core's vocabulary (protocol messages and
// token claims are JSON); clients get it without the core through AuthJSON.
@_exported import AuthJSON
