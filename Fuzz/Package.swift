// swift-tools-version:6.0
// libFuzzer targets for authd's parsers and rules. Built and run by
// scripts/fuzz.sh with -sanitize=fuzzer,address; not part of the main build.
import PackageDescription

let package = Package(
    name: "authd-fuzz",
    dependencies: [.package(name: "authd", path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzRequest", dependencies: ["FuzzSupport", .product(name: "AuthCore", package: "authd")]),
        .executableTarget(
            name: "FuzzJWS", dependencies: ["FuzzSupport", .product(name: "AuthCore", package: "authd")]),
        .executableTarget(
            name: "FuzzRules", dependencies: ["FuzzSupport", .product(name: "AuthCore", package: "authd")]),
    ]
)
