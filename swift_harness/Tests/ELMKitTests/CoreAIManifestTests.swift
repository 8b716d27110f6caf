import Foundation
import Testing
@testable import ELMKit

/// export.json with `formats` and a `coreai` section (Fixtures/manifest_*.json, shaped like what
/// elm-export writes for the embedded openelm-tiny model): Core AI only, both formats, a manifest
/// from before Core AI, and one that lists Core AI without describing it.
@Suite struct CoreAIManifestTests {
    static let coreAIOnly = "manifest_coreai_only.json"
    static let bothFormats = "manifest_both_formats.json"
    static let withoutFormats = "manifest_without_formats.json"
    static let missingCoreAISection = "manifest_coreai_missing_section.json"

    static func text(_ fixture: String) throws -> String {
        String(decoding: try Data(contentsOf: Fixtures.url(fixture)), as: UTF8.self)
    }

    func manifest(_ fixture: String) throws -> ExportManifest {
        try ExportManifest.load(from: Fixtures.url(fixture))
    }

    /// The ManifestError text for `text`, or "no error".
    func message(_ text: String) -> String {
        ManifestFixtures.message(text)
    }

    /// The fixture with its `coreai` section changed by `edit`.
    func editedCoreAI(_ fixture: String, _ edit: @escaping (inout [String: Any]) -> Void) throws -> String {
        ManifestFixtures.edited(try Self.text(fixture)) { object in
            var section = object["coreai"] as! [String: Any]
            edit(&section)
            object["coreai"] = section
        }
    }

    @Test func readsACoreAIOnlyManifest() throws {
        let m = try manifest(Self.coreAIOnly)
        #expect(m.formats == [.coreAI] && m.primaryFormat == .coreAI)
        #expect(m.chunks.isEmpty && m.chunks(for: .coreML).isEmpty)
        let coreAI = try #require(m.coreAI)
        #expect(coreAI.package == nil && coreAI.deploymentTarget == "iOS27" && coreAI.packageBytes == 2_207_777)
        let chunks = m.chunks(for: .coreAI)
        #expect(chunks.map(\.package) == ["OpenELM-tiny-int4-1of2.aimodel", "OpenELM-tiny-int4-2of2.aimodel"])
        #expect(chunks.map(\.layers) == [0..<3, 3..<6])
        #expect(chunks.map(\.input) == ["input_ids", "hidden_in"] && chunks.map(\.output) == ["hidden_out", "logits"])
        #expect(chunks[1].decode.input("hidden_in") == TensorSpec(name: "hidden_in", shape: [1, 1, 192], dtype: "float16"))
        #expect(chunks[1].prefill.output("logits")?.shape == [1, 64, 1, 4096])
        #expect(chunks.allSatisfy { $0.states.map(\.name) == ["key_cache", "value_cache"] && $0.weightsSHA256 == nil })
        #expect(m.isSplit && m.isSplit(.coreAI) && !m.isSplit(.coreML))
        #expect(m.packageBytes(.coreAI) == 2_207_777 && m.packageBytes == 2_207_777)
        #expect(m.packagesDescription == """
            2 packages: OpenELM-tiny-int4-1of2.aimodel (layers 0-2, 1.2 MB), \
            OpenELM-tiny-int4-2of2.aimodel (layers 3-5, 1.0 MB); 2.2 MB in all
            """)
    }

    @Test func coreAIChunkFilesAreReadLikeCoreMLOnes() throws {
        let chunks = try manifest(Self.coreAIOnly).chunks(for: .coreAI)
        let files = try #require(chunks[0].files)
        #expect(files.map(\.path).sorted() == ["metadata.json", "model.mil", "weights/weight.bin"])
        #expect(files.allSatisfy { $0.sha256.count == 64 })
        // The same `files` reader as for Core ML: a bad hash names its field.
        let text = message(try editedCoreAI(Self.coreAIOnly) { section in
            var chunks = section["chunks"] as! [[String: Any]]
            chunks[0]["files"] = ["model.mil": "not-a-hash"]
            section["chunks"] = chunks
        })
        #expect(text.contains("field 'coreai.chunks[0].files[\"model.mil\"]' should be a SHA-256 in hex"), "\(text)")
    }

    @Test func readsABothFormatsManifest() throws {
        let m = try manifest(Self.bothFormats)
        #expect(m.formats == [.coreML, .coreAI] && m.primaryFormat == .coreML)
        let coreML = m.chunks(for: .coreML), coreAI = m.chunks(for: .coreAI)
        #expect(coreML.map(\.package) == ["OpenELM-tiny-int4.mlpackage"] && coreML == m.chunks)
        #expect(coreAI.map(\.package) == ["OpenELM-tiny-int4.aimodel"] && m.coreAI?.package == "OpenELM-tiny-int4.aimodel")
        // The same model either way: same layers, signatures and states.
        #expect(coreML[0].layers == coreAI[0].layers && coreML[0].prefill == coreAI[0].prefill)
        #expect(coreML[0].decode == coreAI[0].decode && coreML[0].states == coreAI[0].states)
        #expect(coreML[0].weightsSHA256 != nil && coreAI[0].weightsSHA256 == nil)
        #expect(m.packagesDescription(for: .coreML) == "OpenELM-tiny-int4.mlpackage (2.2 MB)")
        #expect(m.packagesDescription(for: .coreAI) == "OpenELM-tiny-int4.aimodel (2.1 MB)")
    }

    /// export.json as elm-export wrote it (`elm-export --size tiny --format both`), not written by hand.
    @Test func readsTheExportersOwnBothFormatsManifest() throws {
        let m = try manifest("manifest_exported_both.json")
        #expect(m.formats == [.coreML, .coreAI] && m.primaryFormat == .coreML)
        let coreAI = m.chunks(for: .coreAI), coreML = m.chunks(for: .coreML)
        #expect(coreAI.map(\.package) == ["OpenELM-tiny-int4.aimodel"] && m.coreAI?.deploymentTarget == "iOS27")
        #expect(coreML.map(\.package) == ["OpenELM-tiny-int4.mlpackage"])
        #expect(coreAI[0].prefill == coreML[0].prefill && coreAI[0].decode == coreML[0].decode)
        #expect(coreAI[0].states == coreML[0].states && coreAI[0].layers == 0..<6)
        #expect(coreAI[0].prefill.output("logits")?.shape == [1, 64, 1, 4096])
        #expect(try #require(coreAI[0].files).map(\.path).sorted() == ["main.hash", "main.mlirb", "metadata.json"])
    }

    @Test func aManifestWithoutFormatsHoldsCoreML() throws {
        let old = try manifest(Self.withoutFormats)
        #expect(old.formats == [.coreML] && old.coreAI == nil && old.chunks(for: .coreAI).isEmpty)
        #expect(old.chunks == (try manifest(Self.bothFormats)).chunks)
        // formats: null reads the same as no formats.
        let null = try ExportManifest(data: Data(ManifestFixtures.edited(try Self.text(Self.withoutFormats)) { $0["formats"] = NSNull() }.utf8))
        #expect(null.formats == [.coreML])
    }

    @Test func listingCoreAIWithoutItsSectionIsAnError() throws {
        #expect { try manifest(Self.missingCoreAISection) } throws: { error in
            guard let error = error as? ManifestError else { return false }
            return error.source.hasSuffix(Self.missingCoreAISection)
                && error.reason.contains("formats lists 'coreai' but the 'coreai' section with its chunks is missing or null")
        }
        let absent = message(ManifestFixtures.edited(try Self.text(Self.missingCoreAISection)) { $0["coreai"] = nil })
        #expect(absent.contains("formats lists 'coreai' but the 'coreai' section"), "\(absent)")
        let noChunks = message(try editedCoreAI(Self.bothFormats) { $0["chunks"] = nil })
        #expect(noChunks.contains("field 'coreai.chunks' is missing"), "\(noChunks)")
        let empty = message(try editedCoreAI(Self.bothFormats) { $0["chunks"] = [Any]() })
        #expect(empty.contains("coreai.chunks is empty but formats lists 'coreai'"), "\(empty)")
    }

    @Test func formatsMustAgreeWithTheSections() throws {
        let both = try Self.text(Self.bothFormats)
        let unlisted = message(ManifestFixtures.edited(both) { $0["formats"] = ["coreml"] })
        #expect(unlisted.contains("there is a 'coreai' section but formats does not list 'coreai'"), "\(unlisted)")
        let coreMLUnlisted = message(ManifestFixtures.edited(both) { $0["formats"] = ["coreai"] })
        #expect(coreMLUnlisted.contains("describe Core ML packages but formats does not list 'coreml'"), "\(coreMLUnlisted)")
        let noCoreML = message(ManifestFixtures.edited(try Self.text(Self.coreAIOnly)) { $0["formats"] = ["coreml", "coreai"] })
        #expect(noCoreML.contains("chunks is empty but formats lists 'coreml'"), "\(noCoreML)")
        let unknown = message(ManifestFixtures.edited(both) { $0["formats"] = ["coreml", "onnx"] })
        #expect(unknown.contains("formats[1] is 'onnx', which this ELMKit does not know (it reads coreml, coreai)"), "\(unknown)")
        let none = message(ManifestFixtures.edited(both) { $0["formats"] = [Any]() })
        #expect(none.contains("formats is empty"), "\(none)")
        let notStrings = message(ManifestFixtures.edited(both) { $0["formats"] = [1] })
        #expect(notStrings.contains("field 'formats[0]' should be a string but is a number"), "\(notStrings)")
    }

    @Test func coreAIChunksAreCheckedLikeCoreMLOnes() throws {
        func editedChunk(_ index: Int, _ edit: @escaping (inout [String: Any]) -> Void) throws -> String {
            try editedCoreAI(Self.coreAIOnly) { section in
                var chunks = section["chunks"] as! [[String: Any]]
                edit(&chunks[index])
                section["chunks"] = chunks
            }
        }
        let input = message(try editedChunk(1) { $0["input"] = "input_ids" })
        #expect(input.contains("coreai.chunks[1].input is 'input_ids', expected 'hidden_in'"), "\(input)")
        let gap = message(try editedChunk(1) { $0["layers"] = [4, 6] })
        #expect(gap.contains("coreai.chunks[1].layers [4, 6] do not continue the chunk before it, [0, 3]"), "\(gap)")
        let package = message(try editedChunk(0) { $0["package"] = "OpenELM-tiny-int4-1of2.mlpackage" })
        #expect(package.contains("coreai.chunks[0].package 'OpenELM-tiny-int4-1of2.mlpackage' should name a .aimodel folder"), "\(package)")
        let states = message(try editedChunk(0) { $0["states"] = [["name": "cache", "shape": [1], "dtype": "float16"]] })
        #expect(states.contains("coreai.chunks[0].states are [\"cache\"], expected 'key_cache' and 'value_cache'"), "\(states)")
        let differ = message(try editedCoreAI(Self.bothFormats) { $0["package"] = "Other.aimodel" })
        #expect(differ.contains("coreai.package 'Other.aimodel' and coreai.chunks[0].package 'OpenELM-tiny-int4.aimodel' differ"), "\(differ)")
    }

    @Test func missingCoreAIPackagesAreListed() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let m = try manifest(Self.coreAIOnly)
        #expect(m.missingPackages(in: folder, format: .coreAI) == ["OpenELM-tiny-int4-1of2.aimodel", "OpenELM-tiny-int4-2of2.aimodel"])
        #expect(m.missingPackages(in: folder, format: .coreML).isEmpty)  // it holds no Core ML packages
        // A package counts as there as .aimodel or as the .aimodelc compiled from it.
        let manager = FileManager.default
        try manager.createDirectory(at: folder.appendingPathComponent("OpenELM-tiny-int4-1of2.aimodel"), withIntermediateDirectories: false)
        try manager.createDirectory(at: folder.appendingPathComponent("OpenELM-tiny-int4-2of2.aimodelc"), withIntermediateDirectories: false)
        #expect(m.missingPackages(in: folder, format: .coreAI).isEmpty)
        let compiled = ExportManifest.packageURL("OpenELM-tiny-int4-2of2.aimodel", in: folder, format: .coreAI)
        #expect(compiled.lastPathComponent == "OpenELM-tiny-int4-2of2.aimodelc")
        let written = ExportManifest.packageURL("OpenELM-tiny-int4-1of2.aimodel", in: folder, format: .coreAI)
        #expect(written.lastPathComponent == "OpenELM-tiny-int4-1of2.aimodel")
    }
}
