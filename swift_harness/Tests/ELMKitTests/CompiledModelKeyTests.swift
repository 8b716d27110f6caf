import Foundation
import Testing
@testable import ELMKit

/// The compile cache's key: it must change whenever any file of a package changes (a re-export
/// that changes the program but not weight.bin included), and only then.
@Suite struct CompiledModelKeyTests {
    /// The files export.json lists for the embedded openelm-tiny int4 export.
    static let files: [String: String] = [
        "Data/com.apple.CoreML/model.mlmodel": "7319e7923edf2f15adb9ac07e806c0e6a7b6690ef8ca8d71e5b48c739c39a102",
        "Data/com.apple.CoreML/weights/weight.bin": "b495660f300c601cd58772d7eb3a9fd4ad02d5ad36ab7060ec969016a741bfcb",
        "Manifest.json": "ad941b6f9c33a256f2b8808bb40794f81b5e85d7b48d02bdb149236fad1c77db",
    ]

    /// The single-package fixture with `files` added to its chunk.
    func manifest(files: [String: String]) throws -> ExportManifest {
        let text = ManifestFixtures.editedChunk(ManifestFixtures.unsplit, 0) { $0["files"] = files }
        return try ExportManifest(data: Data(text.utf8))
    }

    func key(_ files: [String: String]) throws -> String {
        let chunk = try manifest(files: files).chunks[0]
        return try CompiledModelKey.key(for: chunk, package: URL(fileURLWithPath: "/nonexistent.mlpackage"))
    }

    @Test func readsTheFilesOfEachPackage() throws {
        let chunk = try manifest(files: Self.files).chunks[0]
        #expect(chunk.files?.count == 3)
        #expect(chunk.files?.first { $0.path == "Manifest.json" }?.sha256 == Self.files["Manifest.json"])
        // Older manifests have no list; the field is optional.
        #expect(try ExportManifest(data: Data(ManifestFixtures.unsplit.utf8)).chunks[0].files == nil)
        #expect(try ExportManifest(data: Data(ManifestFixtures.split.utf8)).chunks.allSatisfy { $0.files == nil })
    }

    @Test func rejectsAFilesEntryThatIsNotAHash() {
        #expect(throws: ManifestError.self) { try manifest(files: ["Manifest.json": "not hex"]) }
    }

    @Test func sameManifestGivesTheSameKey() throws {
        let first = try key(Self.files)
        #expect(first.count == CompiledModelKey.length && first.allSatisfy(\.isHexDigit))
        #expect(try key(Self.files) == first)
        // Listed in another order, or with uppercase hex: the same files.
        let reversed = Self.files.sorted { $0.key > $1.key }.map { PackageFile(path: $0.key, sha256: $0.value.uppercased()) }
        #expect(CompiledModelKey.fromManifest(reversed) == first)
    }

    @Test func anyChangedFileHashChangesTheKey() throws {
        let original = try key(Self.files)
        for path in Self.files.keys {
            var changed = Self.files
            changed[path] = String(repeating: "0", count: 64)
            #expect(try key(changed) != original, "\(path) changed but the key did not")
        }
        // The program changed and the weights did not: the case the old weights-only key missed.
        var newProgram = Self.files
        newProgram["Data/com.apple.CoreML/model.mlmodel"] = "1" + newProgram["Data/com.apple.CoreML/model.mlmodel"]!.dropFirst()
        #expect(try key(newProgram) != original)
    }

    @Test func addedRemovedOrRenamedFilesChangeTheKey() throws {
        let original = try key(Self.files)
        var added = Self.files
        added["Data/com.apple.CoreML/extra.bin"] = String(repeating: "a", count: 64)
        var removed = Self.files
        removed["Manifest.json"] = nil
        var renamed = Self.files
        renamed["manifest.json"] = renamed.removeValue(forKey: "Manifest.json")
        for files in [added, removed, renamed] { #expect(try key(files) != original) }
    }

    /// Without `files`, the key comes from the package's own files (sizes and modification times).
    @Test func fallsBackToThePackagesFiles() throws {
        let package = try Fixtures.temporaryFolder().appendingPathComponent("Model.mlpackage")
        let weights = package.appendingPathComponent("Data/com.apple.CoreML/weights/weight.bin")
        let program = package.appendingPathComponent("Data/com.apple.CoreML/model.mlmodel")
        try FileManager.default.createDirectory(at: weights.deletingLastPathComponent(), withIntermediateDirectories: true)
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        for file in [weights, program, package.appendingPathComponent("Manifest.json")] {
            try Data("content".utf8).write(to: file)
            try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: file.path)
        }
        let chunk = try ExportManifest(data: Data(ManifestFixtures.unsplit.utf8)).chunks[0]
        let original = try CompiledModelKey.key(for: chunk, package: package)
        #expect(try CompiledModelKey.key(for: chunk, package: package) == original)

        // A re-export rewrites the program: new size, new time.
        try Data("a new program".utf8).write(to: program)
        let rewritten = try CompiledModelKey.key(for: chunk, package: package)
        #expect(rewritten != original)
        // Same size, new time only.
        try FileManager.default.setAttributes([.modificationDate: date.addingTimeInterval(60)], ofItemAtPath: weights.path)
        #expect(try CompiledModelKey.key(for: chunk, package: package) != rewritten)

        #expect(throws: ManifestError.self) {
            try CompiledModelKey.key(for: chunk, package: package.deletingLastPathComponent().appendingPathComponent("Missing.mlpackage"))
        }
    }
}

@Suite struct SHA256Tests {
    @Test func matchesTheStandardTestVectors() {
        // FIPS 180-4 examples.
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Python hashlib: 55, 56 and 64 bytes of "a" (the length field fits, does not fit, a full block).
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 55)) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 56)) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }
}
