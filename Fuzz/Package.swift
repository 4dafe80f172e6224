// swift-tools-version:6.0
// libFuzzer targets for authd's parsers and rules. Built and run by
// scripts/fuzz.sh with -sanitize=fuzzer,address; not part of the main build.
import PackageDescription

let package = Package(
    name: "authd-fuzz",
    dependencies: [.package(name: "authd", path: "..")],
    targets: [
        .executableTarget(name: "FuzzRequest", dependencies: [.product(name: "AuthCore", package: "authd")]),
        .executableTarget(name: "FuzzJWS", dependencies: [.product(name: "AuthCore", package: "authd")]),
        .executableTarget(name: "FuzzRules", dependencies: [.product(name: "AuthCore", package: "authd")]),
    ]
)
