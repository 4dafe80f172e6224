// swift-tools-version:6.0
import PackageDescription

// The PostgreSQL store (issue 12) brings postgres-nio and swift-nio-ssl,
// which triple a cold build. AUTHD_WITHOUT_POSTGRES=1 leaves it out: the
// sanitizer builds in scripts/test.sh use it (the store's own tests run in
// the plain build, against a real server).
let withPostgres = Context.environment["AUTHD_WITHOUT_POSTGRES"] != "1"

let package = Package(
    name: "authd",
    platforms: [.macOS(.v15)],
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
    ] + (withPostgres ? [.package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2")] : []),
    targets: [
        // System libraries, linked through pkg-config.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CXCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),

        // The JSON model and codec, shared by the daemon and the client.
        .target(name: "AuthJSON"),
        // The protocol's shared lists (error reasons), for daemon and client.
        .target(name: "AuthProtocol"),
        // Pure domain logic: no sockets, no files, no clocks.
        .target(name: "AuthCore", dependencies: ["AuthJSON", "AuthProtocol", "AuthCrypto"]),
        // The client library for local services: sockets and JSON only.
        .target(name: "AuthClient", dependencies: ["AuthJSON", "AuthProtocol"]),
        // Cryptographic primitives over OpenSSL libcrypto and libxcrypt.
        .target(name: "AuthCrypto", dependencies: ["CCrypto", "CXCrypt", "CArgon2"]),
        // The request logic with ports at its edges: no NIO, GRDB, CSystemd or Foundation.
        .target(name: "AuthServiceCore", dependencies: ["AuthCore", "AuthCrypto"]),
        // SQLite adapter: the CredentialStore of one host.
        .target(
            name: "AuthStore",
            dependencies: [
                "AuthCore", "AuthServiceCore", .product(name: "GRDB", package: "GRDB.swift"),
                // The C API, for the view's load straight from rows.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The daemon: socket server, jobs, journal, systemd.
        .target(
            name: "AuthDaemon",
            dependencies: [
                "AuthCore", "AuthCrypto", "AuthServiceCore", "AuthStore", "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ] + (withPostgres ? ["AuthPostgres"] : [])
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
                "AuthCore", "AuthCrypto", "AuthStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "authctl",
            dependencies: [
                "AuthClient", "AuthCrypto", "AuthJSON", "AuthProtocol", "AuthServiceCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "authd-gate", dependencies: ["AuthClient"], path: "Examples/AuthGate"),
        .testTarget(name: "AuthCoreTests", dependencies: ["AuthCore", "AuthCrypto", "CArgon2"]),
        .testTarget(name: "AuthClientTests", dependencies: ["AuthClient", "AuthProtocol"]),
        .testTarget(
            name: "AuthStoreTests",
            dependencies: [
                "AuthStore", "AuthCore", "AuthCrypto", "AuthServiceCore", .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The service in process, on the in-memory fake and on SQLite; the store conformance suite.
        .testTarget(
            name: "AuthServiceTests",
            dependencies: [
                "AuthServiceCore", "AuthCore", "AuthCrypto", "AuthStore", .product(name: "GRDB", package: "GRDB.swift"),
            ] + (withPostgres ? ["AuthPostgres"] : [])
        ),
        .testTarget(
            name: "AuthdEndToEndTests",
            dependencies: ["AuthCore", "AuthCrypto", "AuthServiceCore", "AuthStore", "AuthDaemon", "AuthClient"]
        ),
    ] + (withPostgres ? postgresTargets : [])
)

/// The PostgreSQL adapter: the CredentialStore several hosts share.
var postgresTargets: [Target] {
    [
        .target(
            name: "AuthPostgres",
            dependencies: [
                "AuthCore", "AuthServiceCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
}
