import Foundation
import Testing
@testable import ELMKit

/// export.json's `adapters` and `merged_adapter`, and `FunctionNames`, which turns a chosen
/// adapter into the functions every package calls.
@Suite struct AdapterManifestTests {
    /// What choosing `adapter` throws; nil when it is chosen.
    func choiceError(_ manifest: ExportManifest, _ adapter: String) -> AdapterChoiceError? {
        do {
            _ = try FunctionNames(manifest: manifest, adapter: adapter)
            return nil
        } catch {
            #expect(error is AdapterChoiceError, "\(type(of: error))")
            return error as? AdapterChoiceError
        }
    }

    @Test func manifestsWithoutAdaptersHaveNone() throws {
        for name in ["manifest_exported_ane.json", "manifest_exported_both.json", "manifest_without_formats.json"] {
            let m = try ExportManifest.load(from: Fixtures.url(name))
            #expect(m.adapters.isEmpty && m.adapterNames.isEmpty && m.mergedAdapter == nil, "\(name)")
        }
        for empty: Any in [[String: Any](), NSNull()] {
            let text = ManifestFixtures.edited(ManifestFixtures.split) { $0["adapters"] = empty; $0["merged_adapter"] = NSNull() }
            let m = try AdapterFixtures.manifest(text)
            #expect(m.adapters.isEmpty && m.mergedAdapter == nil)
        }
    }

    @Test func adaptersAreReadWithEveryField() throws {
        let m = try AdapterFixtures.ane()
        #expect(m.adapterNames == ["proverbs", "psalms"])
        let psalms = try #require(m.adapters["psalms"])
        #expect(psalms.name == "psalms")
        #expect(psalms.functions == [
            "prefill": "prefill_psalms", "decode": "decode_psalms", "verify": "verify_psalms",
            "embed_prefill": "embed_prefill_psalms", "embed_decode": "embed_decode_psalms", "embed_verify": "embed_verify_psalms",
        ])
        #expect(psalms.format == "peft" && psalms.rank == 8 && psalms.alpha == 16 && psalms.scale == 2)
        #expect(psalms.targets == ["token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"])
        #expect(!psalms.dora && psalms.quantization == "none" && psalms.bytes == 123_456)
        #expect(psalms.sourcePath == "/abs/path/to/adapter" && psalms.sourceSHA256?.count == 64)
        #expect(psalms.summary == "LoRA rank 8, alpha 16 on token_embeddings, qkv_proj, out_proj, proj_1, proj_2")
        // The packages list the adapter functions too; the base specs are as before.
        #expect(m.chunks[0].listedFunctions?.contains("decode_psalms") == true)
        #expect(m.coreAI?.chunks[0].listedFunctions?.contains("embed_verify_proverbs") == true)
        #expect(m.chunks[0].decode.input("mask")?.shape == [1, 1, 256])
    }

    @Test func onlyFunctionsRankAlphaAndTargetsAreRequired() throws {
        let minimal: [String: Any] = ["functions": ["prefill": "p_x", "decode": "d_x"], "rank": 4, "alpha": 8, "targets": ["qkv_proj"]]
        let m = try AdapterFixtures.manifest(ManifestFixtures.edited(ManifestFixtures.split) { $0["adapters"] = ["x": minimal] })
        let x = try #require(m.adapters["x"])
        #expect(x.alpha == 8 && x.format == nil && x.scale == nil && !x.dora && x.bytes == nil && x.sourcePath == nil)
        #expect(x.summary == "LoRA rank 4, alpha 8 on qkv_proj")

        var noFunctions = minimal
        noFunctions["functions"] = nil
        let missing = ManifestFixtures.message(ManifestFixtures.edited(ManifestFixtures.split) { $0["adapters"] = ["x": noFunctions] })
        #expect(missing.contains("field 'adapters.x.functions' is missing"), "\(missing)")
        var badName = minimal
        badName["functions"] = ["decode": 3]
        let wrong = ManifestFixtures.message(ManifestFixtures.edited(ManifestFixtures.split) { $0["adapters"] = ["x": badName] })
        #expect(wrong.contains("field 'adapters.x.functions.decode' should be a string"), "\(wrong)")
    }

    @Test func aMergedAdapterIsReadButChangesNothing() throws {
        let merged: [String: Any] = ["name": "psalms", "format": "peft", "rank": 8, "alpha": 16.0, "targets": ["qkv_proj"],
                                     "source": ["path": "/a"]]
        let m = try AdapterFixtures.manifest(ManifestFixtures.edited(ManifestFixtures.split) { $0["merged_adapter"] = merged })
        #expect(m.mergedAdapter == MergedAdapterInfo(name: "psalms", format: "peft", rank: 8, alpha: 16, targets: ["qkv_proj"], sourcePath: "/a"))
        #expect(m.adapters.isEmpty)
        #expect(try FunctionNames(manifest: m, adapter: nil) == .base)
    }

    @Test func theBaseModelCallsTheBaseNames() throws {
        let names = try FunctionNames(manifest: try AdapterFixtures.ane(), adapter: nil)
        #expect(names == .base && names.adapter == nil)
        #expect(ModelFunction.allCases.map(names.name(of:)) == ["prefill", "decode", "verify"])
        #expect(ModelFunction.allCases.map(names.embedName(of:)) == ["embed_prefill", "embed_decode", "embed_verify"])
        #expect(names.description == "base weights")
    }

    @Test func anAdapterMapsEveryFunctionEmbedsIncluded() throws {
        let m = try AdapterFixtures.ane()
        let psalms = try FunctionNames(manifest: m, adapter: "psalms")
        #expect(psalms.adapter == "psalms" && psalms.description == "adapter psalms")
        #expect(ModelFunction.allCases.map(psalms.name(of:)) == ["prefill_psalms", "decode_psalms", "verify_psalms"])
        #expect(ModelFunction.allCases.map(psalms.embedName(of:)) == ["embed_prefill_psalms", "embed_decode_psalms", "embed_verify_psalms"])
        let proverbs = try FunctionNames(manifest: m, adapter: "proverbs")
        #expect(proverbs.name(of: .decode) == "decode_proverbs" && proverbs != psalms)
        // The split gpu export: no embed functions to map.
        #expect(FunctionNames.baseFunctions(of: try AdapterFixtures.split()) == ["prefill", "decode", "verify"])
        #expect(FunctionNames.baseFunctions(of: m) == ["embed_prefill", "prefill", "embed_decode", "decode", "embed_verify", "verify"])
    }

    @Test func anUnknownAdapterListsTheOnesTheExportHas() throws {
        let error = choiceError(try AdapterFixtures.ane(), "psalm")
        #expect(error == .unknown("psalm", available: ["proverbs", "psalms"]))
        #expect(error?.description == "the export has no adapter 'psalm'; its adapters: proverbs, psalms")

        let none = choiceError(try AdapterFixtures.manifest(ManifestFixtures.split), "psalms")
        #expect(none?.description.contains("the export has no adapter 'psalms': it has no adapters at all") == true, "\(String(describing: none))")
    }

    @Test func anAdapterMissingAFunctionIsRefused() throws {
        let text = ManifestFixtures.edited(AdapterFixtures.withAdapters(try NeuralEngineManifestTests.text(), ["psalms"])) { object in
            var adapters = object["adapters"] as! [String: [String: Any]]
            var functions = adapters["psalms"]!["functions"] as! [String: String]
            functions["embed_verify"] = nil
            functions["verify"] = nil
            adapters["psalms"]!["functions"] = functions
            object["adapters"] = adapters
        }
        let m = try AdapterFixtures.manifest(text)  // the base model still loads
        #expect(try FunctionNames(manifest: m, adapter: nil) == .base)
        let error = choiceError(m, "psalms")
        #expect(error == .incomplete("psalms", missing: ["embed_verify", "verify"]))
        #expect(error?.description.contains("adapter 'psalms' names no function for embed_verify, verify") == true)
    }

    @Test func describesWhatRuns() throws {
        let m = try AdapterFixtures.ane()
        #expect(m.adapterDescription(try FunctionNames(manifest: m, adapter: "psalms")).hasPrefix("adapter psalms (LoRA rank 8, alpha 16 on "))
        #expect(m.adapterDescription(.base) == "base weights (adapters: proverbs, psalms)")
        #expect(try AdapterFixtures.manifest(ManifestFixtures.split).adapterDescription(.base) == "base weights")
    }
}
