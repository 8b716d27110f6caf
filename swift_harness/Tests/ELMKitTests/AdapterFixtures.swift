import Foundation
@testable import ELMKit

/// export.json with LoRA adapters, as elm-export writes them: every package of both formats lists
/// `<function>_<adapter>` next to each base function (same signature), and the top-level
/// `adapters` maps each base function to it.
enum AdapterFixtures {
    /// `text` with adapters `names` added (functions named `<base>_<name>`), and `merged`
    /// written as `merged_adapter` when given.
    static func withAdapters(_ text: String, _ names: [String], merged: [String: Any]? = nil) -> String {
        ManifestFixtures.edited(text) { object in
            var baseNames = Set<String>()
            object["chunks"] = addingFunctions(object["chunks"], names, baseNames: &baseNames)
            if var coreAI = object["coreai"] as? [String: Any] {
                coreAI["chunks"] = addingFunctions(coreAI["chunks"], names, baseNames: &baseNames)
                object["coreai"] = coreAI
            }
            var adapters: [String: Any] = [:]
            for name in names {
                adapters[name] = entry(functions: Dictionary(uniqueKeysWithValues: baseNames.map { ($0, "\($0)_\(name)") }))
            }
            object["adapters"] = adapters
            if let merged { object["merged_adapter"] = merged }
        }
    }

    /// An `adapters` entry as the spec in the brief shows it.
    static func entry(functions: [String: String]) -> [String: Any] {
        [
            "functions": functions, "format": "peft", "rank": 8, "alpha": 16.0, "scale": 2.0,
            "targets": ["token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"],
            "dora": false, "quantization": "none", "bytes": 123_456,
            "source": ["path": "/abs/path/to/adapter", "sha256": String(repeating: "ab", count: 32)],
        ]
    }

    /// Each chunk's `functions` with a copy of every base function per adapter; collects the base names.
    private static func addingFunctions(_ chunks: Any?, _ names: [String], baseNames: inout Set<String>) -> [[String: Any]] {
        (chunks as? [[String: Any]] ?? []).map { chunk in
            var chunk = chunk
            var functions = chunk["functions"] as! [String: Any]
            for (base, spec) in functions {
                baseNames.insert(base)
                for name in names { functions["\(base)_\(name)"] = spec }
            }
            chunk["functions"] = functions
            return chunk
        }
    }

    static func manifest(_ text: String) throws -> ExportManifest {
        try ExportManifest(data: Data(text.utf8))
    }

    /// The ane export (both formats, embed and verify functions) with adapters psalms and proverbs.
    static func ane() throws -> ExportManifest {
        try manifest(withAdapters(try NeuralEngineManifestTests.text(), ["psalms", "proverbs"]))
    }

    /// The split gpu export (three packages) with verify and adapter psalms.
    static func split() throws -> ExportManifest {
        try manifest(withAdapters(VerifyManifestTests.split(), ["psalms"]))
    }
}
