// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "authd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "authd", targets: ["authd"]),
        .executable(name: "authbench", targets: ["authbench"]),
        .executable(name: "authctl", targets: ["authctl"]),
        .library(name: "AuthClient", targets: ["AuthClient"]),
        // The pure core, for the fuzz targets in Fuzz/.
        .library(name: "AuthCore", targets: ["AuthCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
    ],
    targets: [
        // System libraries, linked through pkg-config.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CXCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),

        // The JSON model and codec, shared by the daemon and the client.
        .target(name: "AuthJSON"),
        // Pure domain logic: no sockets, no files, no clocks.
        .target(name: "AuthCore", dependencies: ["AuthJSON", "AuthCrypto"]),
        // The client library for local services: sockets and JSON only.
        .target(name: "AuthClient", dependencies: ["AuthJSON"]),
        // Cryptographic primitives over OpenSSL libcrypto and libxcrypt.
        .target(name: "AuthCrypto", dependencies: ["CCrypto", "CXCrypt"]),
        // SQLite adapter.
        .target(
            name: "AuthStore",
            dependencies: ["AuthCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The daemon: socket server, jobs, journal, systemd.
        .target(
            name: "AuthDaemon",
            dependencies: [
                "AuthCore", "AuthCrypto", "AuthStore", "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "authd",
            dependencies: [
                "AuthDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "authbench",
            dependencies: [
                "AuthCore", "AuthCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "authctl",
            dependencies: [
                "AuthClient", "AuthJSON", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "authd-gate", dependencies: ["AuthClient"], path: "Examples/AuthGate"),
        .testTarget(name: "AuthCoreTests", dependencies: ["AuthCore", "AuthCrypto"]),
        .testTarget(name: "AuthStoreTests", dependencies: ["AuthStore", "AuthCore"]),
        .testTarget(
            name: "AuthdEndToEndTests",
            dependencies: ["AuthCore", "AuthCrypto", "AuthStore", "AuthDaemon", "AuthClient"]
        ),
    ]
)
