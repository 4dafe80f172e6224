import AuthCore
import Foundation
import Testing

/// The journal catalog explains every event authd logs, one entry each.
@Suite struct CatalogTests {
    @Test func everyEventHasExactlyOneCatalogEntry() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let catalog = try String(contentsOf: root.appendingPathComponent("systemd/authd.catalog"), encoding: .utf8)
        let ids = catalog.split(separator: "\n").filter { $0.hasPrefix("-- ") }.map { String($0.dropFirst(3)) }
        #expect(ids.sorted() == SecurityEvent.Name.allCases.map(\.messageID).sorted())
        for name in SecurityEvent.Name.allCases {
            #expect(catalog.contains("(\(name.rawValue))"), "\(name.rawValue)")
        }
    }

    @Test func theExampleConfigListsEverySettingWithItsDefault() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("systemd/authd.conf"))
        let file = try #require(try JSONParser.parse(Array(data)).objectValue)
        #expect(Set(file.keys) == Set(SettingsResolver.names))
        let fromFile = try SettingsResolver.resolve(flags: [:], environment: [:], file: file, cores: 3)
        #expect(fromFile == Settings(cores: 3))
    }
}
