import Foundation
import Testing
@testable import ELMKit

/// export.json's verify function (speculative decoding): `functions.verify` in every chunk (and
/// `embed_verify` in an ane export's first chunk), `verify_length` at the top level or in `graph`.
@Suite struct VerifyManifestTests {
    /// `function`'s spec for `length` tokens: every tensor of rank 2 or more gets T = length.
    static func resized(_ spec: Any, to length: Int) -> [String: Any] {
        var spec = spec as! [String: Any]
        for side in ["inputs", "outputs"] {
            spec[side] = (spec[side] as! [[String: Any]]).map { tensor in
                var tensor = tensor
                var shape = tensor["shape"] as! [Int]
                if shape.count >= 2 { shape[1] = length }
                tensor["shape"] = shape
                return tensor
            }
        }
        return spec
    }

    /// Every chunk of `chunks` given verify (and embed_verify where it has embed_decode), made from decode.
    static func withVerify(_ chunks: Any, length: Int, skipping skipped: Int? = nil) -> [[String: Any]] {
        (chunks as! [[String: Any]]).enumerated().map { i, chunk in
            guard i != skipped else { return chunk }
            var chunk = chunk
            var functions = chunk["functions"] as! [String: Any]
            functions["verify"] = resized(functions["decode"]!, to: length)
            if let embed = functions["embed_decode"] { functions["embed_verify"] = resized(embed, to: length) }
            chunk["functions"] = functions
            return chunk
        }
    }

    /// The split gpu export (3 packages) with verify in its chunks (but `skipping` one) and `verify_length`.
    static func split(length: Int? = 5, skipping: Int? = nil, chunkLength: Int? = nil) -> String {
        ManifestFixtures.edited(ManifestFixtures.split) { object in
            object["chunks"] = withVerify(object["chunks"]!, length: chunkLength ?? length ?? 5, skipping: skipping)
            if let length { object["verify_length"] = length }
        }
    }

    /// The ane export (Core ML and Core AI) with verify of `length` tokens in both formats' chunks.
    static func ane(length: Int = 4, embed: Bool = true) throws -> String {
        ManifestFixtures.edited(try NeuralEngineManifestTests.text()) { object in
            object["chunks"] = withVerify(object["chunks"]!, length: length)
            var coreAI = object["coreai"] as! [String: Any]
            coreAI["chunks"] = withVerify(coreAI["chunks"]!, length: length)
            object["coreai"] = coreAI
            var graph = object["graph"] as! [String: Any]
            graph["functions"] = ["embed_prefill", "embed_decode", "embed_verify", "prefill", "decode", "verify"]
            graph["verify_length"] = length
            object["graph"] = graph
            object["verify_length"] = length  // the fixture, a real export, has the default (5)
            if !embed {
                var chunks = object["chunks"] as! [[String: Any]]
                var functions = chunks[0]["functions"] as! [String: Any]
                functions["embed_verify"] = nil
                chunks[0]["functions"] = functions
                object["chunks"] = chunks
            }
        }
    }

    @Test func readsVerifyFromASplitGpuExport() throws {
        let m = try ExportManifest(data: Data(Self.split().utf8))
        #expect(m.verifyLength == 5 && m.hasVerify)
        for chunk in m.chunks {
            #expect(chunk.verify?.input(chunk.input)?.shape[1] == 5)
            #expect(chunk.function(.verify) == chunk.verify && chunk.embedVerify == nil)
        }
        #expect(m.chunks[2].verify?.output("logits")?.shape == [1, 5, 1, 4096])
        #expect(m.chunks[2].outputName(of: .verify) == ChunkSpec.logits)
    }

    @Test func readsVerifyFromAnAneExportWithLogitsForEveryRow() throws {
        let m = try ExportManifest(data: Data(try Self.ane().utf8))
        #expect(m.verifyLength == 4 && m.graph.verifyLength == 4 && m.graph.listsVerify)
        for chunk in m.chunks + m.chunks(for: .coreAI) {
            #expect(chunk.embedVerify?.input("input_ids")?.shape == [1, 4])
            #expect(chunk.verify?.input("rotary")?.shape == [1, 4, 32] && chunk.verify?.input("mask")?.shape == [1, 4, 256])
            #expect(chunk.outputName(of: .verify) == ChunkSpec.logits)  // unlike the ane prefill
        }
        #expect(ChunkSpec.embedFunctionName(.verify) == "embed_verify")
    }

    @Test func exportsWithoutVerifyHaveNone() throws {
        let plain = try ExportManifest(data: Data(ManifestFixtures.split.utf8))
        #expect(plain.verifyLength == nil && !plain.hasVerify && plain.chunks.allSatisfy { $0.verify == nil })
        // A length alone, with no function to call, offers nothing.
        let lengthOnly = ManifestFixtures.edited(ManifestFixtures.split) { $0["verify_length"] = 5 }
        #expect(try ExportManifest(data: Data(lengthOnly.utf8)).verifyLength == nil)
        #expect(GraphContract.gpu.functions == ["prefill", "decode"])
    }

    @Test func verifyMistakesAreNamed() throws {
        #expect(ManifestFixtures.message(Self.split(length: 1)).contains("verify_length is 1"))
        #expect(ManifestFixtures.message(Self.split(length: 600)).contains("verify_length is 600"))
        #expect(ManifestFixtures.message(Self.split(length: nil)).contains("no verify_length"))
        let partial = ManifestFixtures.message(Self.split(skipping: 1))
        #expect(partial.contains("chunks[1].functions.verify is missing"), "\(partial)")
        let shape = ManifestFixtures.message(Self.split(length: 5, chunkLength: 4))
        #expect(shape.contains("chunks[0].functions.verify.input_ids has shape [1, 4], expected [1, 5]"), "\(shape)")
        let listedOnly = ManifestFixtures.edited(ManifestFixtures.split) { object in
            object["graph"] = ["target": "gpu", "functions": ["prefill", "decode", "verify"], "verify_length": 5]
        }
        #expect(ManifestFixtures.message(listedOnly).contains("chunks[0].functions.verify is missing"))
        let disagree = ManifestFixtures.edited(try Self.ane()) { $0["verify_length"] = 5 }
        #expect(ManifestFixtures.message(disagree).contains("verify_length is 5 but graph.verify_length is 4"))
        let noEmbed = ManifestFixtures.message(try Self.ane(embed: false))
        #expect(noEmbed.contains("chunks[0].functions.embed_verify is missing"), "\(noEmbed)")
    }
}
