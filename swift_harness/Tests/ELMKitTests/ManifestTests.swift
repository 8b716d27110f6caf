import Foundation
import Testing
@testable import ELMKit

@Suite struct ManifestTests {
    static let valid = """
        {
          "format": "elm-export/1",
          "name": "OpenELM-450M-int4",
          "package": "OpenELM-450M-int4.mlpackage",
          "context_length": 2048,
          "prefill_length": 64,
          "vocab_size": 32000,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "tokenizer": {"files": ["tokenizer.json", "tokenizer_config.json"], "add_bos": true},
          "functions": {
            "prefill": {"inputs": [{"name": "input_ids", "shape": [1, 64], "dtype": "int32"}, {"name": "position", "shape": [1], "dtype": "int32"}],
                        "outputs": [{"name": "logits", "shape": [1, 64, 2, 16000], "dtype": "float16"}]},
            "decode":  {"inputs": [{"name": "input_ids", "shape": [1, 1], "dtype": "int32"}, {"name": "position", "shape": [1], "dtype": "int32"}],
                        "outputs": [{"name": "logits", "shape": [1, 1, 2, 16000], "dtype": "float16"}]}
          },
          "states": [{"name": "key_cache", "shape": [1, 96, 2048, 64], "dtype": "float16"},
                     {"name": "value_cache", "shape": [1, 96, 2048, 64], "dtype": "float16"}],
          "logits_layout": {"pieces": 2, "piece_size": 16000},
          "quantization": {"mode": "int4"},
          "weights_sha256": "abc123"
        }
        """

    func message(_ text: String) -> String {
        ManifestFixtures.message(text)
    }

    func edited(_ old: String, _ new: String) -> String {
        precondition(Self.valid.contains(old), "test edit does not apply: \(old)")
        return Self.valid.replacingOccurrences(of: old, with: new)
    }

    @Test func readsAValidManifest() throws {
        let m = try ExportManifest(data: Data(Self.valid.utf8))
        #expect(m.name == "OpenELM-450M-int4")
        #expect(m.contextLength == 2048 && m.prefillLength == 64 && m.vocabSize == 32000)
        #expect(m.bosTokenId == 1 && m.eosTokenId == 2)
        #expect(m.tokenizer?.files == ["tokenizer.json", "tokenizer_config.json"] && m.tokenizer?.addBOS == true)
        #expect(m.logitsPieces == 2 && m.logitsPieceSize == 16000)
        // No "chunks" (written before split exports): the top level is the one package.
        #expect(m.chunks.count == 1 && !m.isSplit)
        let chunk = m.chunks[0]
        #expect(chunk.package == "OpenELM-450M-int4.mlpackage")
        #expect(chunk.input == "input_ids" && chunk.output == "logits")
        #expect(chunk.layers == nil && m.layerCount == nil)  // no "model" section says how many
        #expect(chunk.prefill.input("input_ids") == TensorSpec(name: "input_ids", shape: [1, 64], dtype: "int32"))
        #expect(chunk.decode.output("logits")?.shape == [1, 1, 2, 16000])
        #expect(chunk.function(.decode) == chunk.decode && chunk.function(.prefill) == chunk.prefill)
        #expect(chunk.states.map(\.name) == ["key_cache", "value_cache"])
        #expect(chunk.weightsSHA256 == "abc123")
        #expect(m.packageBytes == nil && m.packagesDescription == "OpenELM-450M-int4.mlpackage")
    }

    @Test func tokenizerMayBeNull() throws {
        let m = try ExportManifest(data: Data(edited(#""tokenizer": {"files": ["tokenizer.json", "tokenizer_config.json"], "add_bos": true}"#, #""tokenizer": null"#).utf8))
        #expect(m.tokenizer == nil)
    }

    @Test func loadsFromAFolder() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.valid.utf8).write(to: folder.appendingPathComponent("export.json"))
        #expect(try ExportManifest.load(from: folder).name == "OpenELM-450M-int4")
    }

    @Test func missingFile() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect { try ExportManifest.load(from: folder) } throws: { error in
            "\(error)".contains("export.json: file not found")
        }
    }

    @Test func invalidJSON() {
        let text = message(String(Self.valid.dropLast(40)))
        #expect(text.contains("export.json: not valid JSON") && text.contains("line"), "\(text)")
        #expect(message("[1, 2").contains("not valid JSON"))
    }

    @Test func missingFieldsAreNamedWithTheirPath() {
        #expect(message(edited(#""context_length": 2048,"#, "")).contains("field 'context_length' is missing"))
        let nested = message(edited(#""decode":  {"inputs""#, #""decode_x":  {"inputs""#))
        #expect(nested.contains("field 'functions.decode' is missing"), "\(nested)")
        let deeper = message(edited(#"{"name": "position", "shape": [1], "dtype": "int32"}]"#, #"{"shape": [1], "dtype": "int32"}]"#))
        #expect(deeper.contains("field 'functions.prefill.inputs[1].name' is missing"), "\(deeper)")
    }

    @Test func wrongTypesAreNamed() {
        let text = message(edited(#""prefill_length": 64"#, #""prefill_length": "64""#))
        #expect(text.contains("field 'prefill_length' should be an integer but is a string"), "\(text)")
        #expect(message("[]").contains("should be an object but is an array"))
    }

    @Test func unsupportedFormatVersion() {
        let text = message(edited(#""format": "elm-export/1""#, #""format": "elm-export/2""#))
        #expect(text.contains("format 'elm-export/2' is not supported") && text.contains("elm-export/1"), "\(text)")
        // The version is checked before anything else, whatever else changed.
        #expect(message(#"{"format": "elm-export/9"}"#).contains("not supported"))
    }

    @Test func inconsistentShapesAreCaught() {
        let layout = message(edited(#""pieces": 2, "piece_size": 16000"#, #""pieces": 2, "piece_size": 15000"#))
        #expect(layout.contains("logits_layout") && layout.contains("vocab_size"), "\(layout)")
        let ids = message(edited(#"[{"name": "input_ids", "shape": [1, 64]"#, #"[{"name": "input_ids", "shape": [1, 32]"#))
        #expect(ids.contains("export.json: functions.prefill.input_ids has shape [1, 32], expected [1, 64]"), "\(ids)")
        let dtype = message(edited(#"{"name": "input_ids", "shape": [1, 1], "dtype": "int32"}"#, #"{"name": "input_ids", "shape": [1, 1], "dtype": "float16"}"#))
        #expect(dtype.contains("functions.decode.input_ids is float16, expected int32"), "\(dtype)")
        let logits = message(edited(#""shape": [1, 1, 2, 16000]"#, #""shape": [1, 1, 16000, 2]"#))
        #expect(logits.contains("functions.decode.logits has shape [1, 1, 16000, 2], expected [1, 1, 2, 16000]"), "\(logits)")
    }
}
