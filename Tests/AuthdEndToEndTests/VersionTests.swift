import AuthServiceCore
import Foundation
import Testing

/// debian/changelog is the one source of authd's version: the package
/// takes it from there, and Version.swift is generated from it.
@Suite struct VersionTests {
    @Test func theDaemonsVersionIsTheChangelogsFirstEntry() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let changelog = try String(contentsOf: root.appendingPathComponent("debian/changelog"), encoding: .utf8)
        let first = try #require(changelog.split(separator: "\n").first)
        let version = try #require(first.split(separator: "(").dropFirst().first?.split(separator: ")").first)
        #expect(
            AuthService.version == String(version),
            "debian/changelog says \(version): run scripts/embed-version.sh")
    }
}
