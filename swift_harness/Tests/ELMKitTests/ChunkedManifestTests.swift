import Foundation
import Testing
@testable import ELMKit

/// export.json with `chunks`: the split layout (several packages, top-level package fields null)
/// and the single-package one (a list of one, top level kept for older readers).
@Suite struct ChunkedManifestTests {
    func manifest(_ text: String) throws -> ExportManifest {
        try ExportManifest(data: Data(text.utf8), source: "export.json")
    }

    /// The ManifestError text for `text`, or "no error".
    func message(_ text: String) -> String {
        do {
            _ = try manifest(text)
            return "no error"
        } catch {
            #expect(error is ManifestError, "\(type(of: error)) is not a ManifestError")
            return "\(error)"
        }
    }

    @Test func readsASplitExport() throws {
        let m = try manifest(ManifestFixtures.split)
        #expect(m.isSplit && m.layerCount == 6)
        #expect(m.chunks.map(\.package) == (1...3).map { "OpenELM-tiny-int4-\($0)of3.mlpackage" })
        #expect(m.chunks.map(\.layers) == [0..<2, 2..<5, 5..<6])
        #expect(m.chunks.map(\.input) == ["input_ids", "hidden_in", "hidden_in"])
        #expect(m.chunks.map(\.output) == ["hidden_out", "hidden_out", "logits"])
        #expect(m.chunks[0].prefill.input("input_ids")?.shape == [1, 64])
        #expect(m.chunks[1].decode.input("hidden_in") == TensorSpec(name: "hidden_in", shape: [1, 1, 192], dtype: "float16"))
        #expect(m.chunks[1].prefill.output("hidden_out")?.shape == [1, 64, 192])
        #expect(m.chunks[2].prefill.output("logits")?.shape == [1, 64, 1, 4096])
        // Each chunk has its own cache and its own weights.
        #expect(m.chunks.allSatisfy { $0.states.map(\.name) == ["key_cache", "value_cache"] })
        #expect(m.chunks.map { $0.weightsSHA256?.prefix(8) } == ["9ebda1d7", "bddbde51", "eee73e8d"])
        #expect(m.chunks.map(\.packageBytes) == [861_120, 966_043, 878_403] && m.packageBytes == 2_705_566)
        #expect(m.contextLength == 512 && m.prefillLength == 64 && m.vocabSize == 4096)
        #expect(m.logitsPieces == 1 && m.logitsPieceSize == 4096)
    }

    @Test func describesTheSplitPackages() throws {
        #expect(try manifest(ManifestFixtures.split).packagesDescription == """
            3 packages: OpenELM-tiny-int4-1of3.mlpackage (layers 0-1, 0.9 MB), \
            OpenELM-tiny-int4-2of3.mlpackage (layers 2-4, 1.0 MB), \
            OpenELM-tiny-int4-3of3.mlpackage (layer 5, 0.9 MB); 2.7 MB in all
            """)
        #expect(try manifest(ManifestFixtures.unsplit).packagesDescription == "OpenELM-tiny-int4.mlpackage (2.2 MB)")
    }

    @Test func singlePackageLayoutsReadTheSame() throws {
        let listed = try manifest(ManifestFixtures.unsplit)
        let legacy = try manifest(ManifestFixtures.unsplitWithoutChunks)
        #expect(!listed.isSplit && listed.chunks.count == 1)
        #expect(listed.chunks == legacy.chunks)  // layers from model.num_transformer_layers when not listed
        #expect(legacy.chunks[0].layers == 0..<6 && legacy.chunks[0].package == "OpenELM-tiny-int4.mlpackage")
        #expect(legacy.chunks[0].weightsSHA256 == "b495660f300c601cd58772d7eb3a9fd4ad02d5ad36ab7060ec969016a741bfcb")
    }

    @Test func singleChunkMustAgreeWithTheTopLevel() {
        let text = message(ManifestFixtures.edited(ManifestFixtures.unsplit) { $0["package"] = "Other.mlpackage" })
        #expect(text.contains("package 'Other.mlpackage' and chunks[0].package 'OpenELM-tiny-int4.mlpackage' differ"), "\(text)")
    }

    @Test func emptyChunkList() {
        let text = message(ManifestFixtures.edited(ManifestFixtures.split) { $0["chunks"] = [Any]() })
        #expect(text.contains("export.json: chunks is empty"), "\(text)")
    }

    @Test func chunkEndsMustChainFromIdsToLogits() {
        let split = ManifestFixtures.split
        let first = message(ManifestFixtures.editedChunk(split, 0) { $0["input"] = "hidden_in" })
        #expect(first.contains("chunks[0].input is 'hidden_in', expected 'input_ids'"), "\(first)")
        let middle = message(ManifestFixtures.editedChunk(split, 1) { $0["output"] = "logits" })
        #expect(middle.contains("chunks[1].output is 'logits', expected 'hidden_out'"), "\(middle)")
        let later = message(ManifestFixtures.editedChunk(split, 2) { $0["input"] = "input_ids" })
        #expect(later.contains("chunks[2].input is 'input_ids', expected 'hidden_in'"), "\(later)")
        let last = message(ManifestFixtures.editedChunk(split, 2) { $0["output"] = "hidden_out" })
        #expect(last.contains("chunks[2].output is 'hidden_out', expected 'logits'"), "\(last)")
        // Dropping the last chunk leaves a model that never reaches the logits.
        let truncated = message(ManifestFixtures.edited(split) { $0["chunks"] = Array(($0["chunks"] as! [Any]).prefix(2)) })
        #expect(truncated.contains("chunks[1].output is 'hidden_out', expected 'logits'"), "\(truncated)")
    }

    @Test func layersMustBeContiguousAndCoverTheModel() {
        let split = ManifestFixtures.split
        let gap = message(ManifestFixtures.editedChunk(split, 1) { $0["layers"] = [3, 5] })
        #expect(gap.contains("chunks[1].layers [3, 5] do not continue the chunk before it, [0, 2]"), "\(gap)")
        let overlap = message(ManifestFixtures.editedChunk(split, 2) { $0["layers"] = [4, 6] })
        #expect(overlap.contains("chunks[2].layers [4, 6] do not continue the chunk before it, [2, 5]"), "\(overlap)")
        let start = message(ManifestFixtures.editedChunk(split, 0) { $0["layers"] = [1, 2] })
        #expect(start.contains("chunks[0].layers start at 1; the first chunk must start at layer 0"), "\(start)")
        let short = message(ManifestFixtures.edited(split) { $0["model"] = ["num_transformer_layers": 7, "model_dim": 192] })
        #expect(short.contains("chunks[2].layers stop at 6 but the model has 7 layers"), "\(short)")
        let malformed = message(ManifestFixtures.editedChunk(split, 1) { $0["layers"] = [5, 2] })
        #expect(malformed.contains("field 'chunks[1].layers' should be [start, stop] with 0 <= start < stop but is [5, 2]"), "\(malformed)")
        let missing = message(ManifestFixtures.editedChunk(split, 1) { $0["layers"] = nil })
        #expect(missing.contains("field 'chunks[1].layers' is missing"), "\(missing)")
    }

    @Test func hiddenStatesMustFitBetweenChunks() {
        // chunks[1] takes the hidden state at a width chunk 0 does not give.
        let text = message(ManifestFixtures.editedChunk(ManifestFixtures.split, 1) { chunk in
            var functions = chunk["functions"] as! [String: Any]
            var prefill = functions["prefill"] as! [String: Any]
            prefill["inputs"] = [["name": "hidden_in", "shape": [1, 64, 128], "dtype": "float16"],
                                 ["name": "position", "shape": [1], "dtype": "int32"]]
            functions["prefill"] = prefill
            chunk["functions"] = functions
        })
        #expect(text.contains("chunks[1].functions.prefill.hidden_in is float16 [1, 64, 128] but chunks[0].functions.prefill.hidden_out is float16 [1, 64, 192]"), "\(text)")
    }

    @Test func chunkFieldsAreNamedWithTheirPath() {
        let text = message(ManifestFixtures.editedChunk(ManifestFixtures.split, 2) { $0["functions"] = nil })
        #expect(text.contains("field 'chunks[2].functions' is missing"), "\(text)")
        let logits = message(ManifestFixtures.editedChunk(ManifestFixtures.split, 2) { chunk in
            var functions = chunk["functions"] as! [String: Any]
            var decode = functions["decode"] as! [String: Any]
            decode["outputs"] = [["name": "logits", "shape": [1, 1, 4096], "dtype": "float16"]]
            functions["decode"] = decode
            chunk["functions"] = functions
        })
        #expect(logits.contains("chunks[2].functions.decode.logits has shape [1, 1, 4096], expected [1, 1, 1, 4096]"), "\(logits)")
    }

    @Test func missingPackagesAreListed() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(ManifestFixtures.split.utf8).write(to: folder.appendingPathComponent("export.json"))
        let m = try ExportManifest.load(from: folder)
        #expect(m.missingPackages(in: folder).count == 3)
        // A package counts as there as .mlpackage or as the .mlmodelc Xcode compiles it into.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("OpenELM-tiny-int4-1of3.mlpackage"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("OpenELM-tiny-int4-3of3.mlmodelc"), withIntermediateDirectories: false)
        #expect(m.missingPackages(in: folder) == ["OpenELM-tiny-int4-2of3.mlpackage"])
    }
}
