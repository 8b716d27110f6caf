import ELMKit
import Foundation
import Testing
@testable import ELMChat

/// The app's adapter choice: the session lists the export's adapters and reloads the model with
/// the one picked. Models are loaded by a recording fake (no Core ML on Linux).
@MainActor
@Suite struct ChatSessionAdapterTests {
    /// Adapters asked of the loader, in order (nil: the base model).
    final class LoadRecord: @unchecked Sendable {
        private let lock = NSLock()
        private var _adapters: [String?] = []
        var adapters: [String?] { lock.withLock { _adapters } }
        func append(_ adapter: String?) { lock.withLock { _adapters.append(adapter) } }
    }

    /// An export folder: ELMKitTests' gpu fixture with adapters psalms and proverbs (or none), and a tiny tokenizer.
    func exportFolder(adapters: [String]) throws -> URL {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ELMKitTests/Fixtures")
        var manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixtures.appendingPathComponent("manifest_exported_both.json"))) as! [String: Any]
        var entries: [String: Any] = [:]
        for name in adapters {
            let functions = Dictionary(uniqueKeysWithValues: ["prefill", "decode", "verify"].map { ($0, "\($0)_\(name)") })
            entries[name] = ["functions": functions, "rank": 8, "alpha": 16, "targets": ["qkv_proj"]]
        }
        manifest["adapters"] = entries
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ELMChatTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent(ExportManifest.fileName))
        let tokenizer = #"{"model": {"type": "BPE", "unk_token": "<unk>", "merges": [], "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3}}}"#
        try Data(tokenizer.utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        return folder
    }

    func session(_ record: LoadRecord) -> ChatSession {
        ChatSession { _, _, _, _, adapter in
            record.append(adapter)
            return SlowLanguageModel(decodeSeconds: 0.001)
        }
    }

    @Test func listsTheAdaptersAndLoadsTheBaseModelFirst() async throws {
        let folder = try exportFolder(adapters: ["psalms", "proverbs"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = LoadRecord()
        let chat = session(record)
        await chat.load(folder: folder)
        #expect(chat.isReady, "\(chat.status)")
        #expect(chat.availableAdapters == ["proverbs", "psalms"] && chat.adapter == nil)
        #expect(record.adapters == [nil])
        #expect(!chat.status.contains("adapter"))
    }

    @Test func choosingAnAdapterReloadsTheModelWithIt() async throws {
        let folder = try exportFolder(adapters: ["psalms", "proverbs"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = LoadRecord()
        let chat = session(record)
        await chat.load(folder: folder)
        await chat.selectAdapter("psalms")
        #expect(chat.isReady && chat.adapter == "psalms")
        #expect(chat.status.contains("adapter psalms"), "\(chat.status)")
        await chat.selectAdapter("psalms")  // no change: no reload
        await chat.selectAdapter(nil)
        #expect(record.adapters == [nil, "psalms", nil])
        #expect(chat.isReady && chat.adapter == nil)
    }

    @Test func anAdapterChosenBeforeLoadingIsUsedByTheLoad() async throws {
        let folder = try exportFolder(adapters: ["psalms"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = LoadRecord()
        let chat = session(record)
        await chat.selectAdapter("psalms")
        #expect(record.adapters.isEmpty)
        await chat.load(folder: folder)
        #expect(record.adapters == ["psalms"] && chat.isReady)
    }

    @Test func anUnknownAdapterSaysWhichOnesExist() async throws {
        let folder = try exportFolder(adapters: ["psalms"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = LoadRecord()
        let chat = session(record)
        await chat.selectAdapter("hymns")
        await chat.load(folder: folder)
        #expect(!chat.isReady && record.adapters.isEmpty)
        #expect(chat.status.contains("the export has no adapter 'hymns'; its adapters: psalms"), "\(chat.status)")
        #expect(chat.availableAdapters == ["psalms"])  // so the picker can offer a way out
        await chat.selectAdapter("psalms")
        #expect(chat.isReady && record.adapters == ["psalms"])
    }
}
