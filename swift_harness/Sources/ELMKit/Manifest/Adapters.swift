/// One LoRA adapter of an export (export.json's `adapters`): extra functions in the same packages
/// that share the base weights and add the adapter's low-rank update. Choosing it by name
/// (`FunctionNames`) makes every call run `functions[base name]` instead of the base function.
public struct AdapterInfo: Sendable, Equatable {
    public let name: String
    /// Base function name ("prefill", "decode", "verify", ane: "embed_prefill", ...) → the function
    /// that runs it with the adapter applied ("prefill_psalms", ...).
    public let functions: [String: String]
    /// Where the adapter came from, e.g. "peft"; nil when not written.
    public let format: String?
    public let rank: Int
    public let alpha: Double
    /// alpha / rank as applied (rsLoRA and others differ); nil when not written.
    public let scale: Double?
    /// The layers it changes, e.g. ["qkv_proj", "out_proj"].
    public let targets: [String]
    /// Weight-decomposed LoRA (DoRA).
    public let dora: Bool
    /// How its weights are stored, e.g. "none"; nil when not written.
    public let quantization: String?
    /// Bytes its weights add to the packages.
    public let bytes: Int?
    /// The adapter folder it was exported from, and its hash.
    public let sourcePath: String?
    public let sourceSHA256: String?

    public init(name: String, functions: [String: String], format: String? = nil, rank: Int, alpha: Double,
                scale: Double? = nil, targets: [String], dora: Bool = false, quantization: String? = nil,
                bytes: Int? = nil, sourcePath: String? = nil, sourceSHA256: String? = nil) {
        self.name = name
        self.functions = functions
        self.format = format
        self.rank = rank
        self.alpha = alpha
        self.scale = scale
        self.targets = targets
        self.dora = dora
        self.quantization = quantization
        self.bytes = bytes
        self.sourcePath = sourcePath
        self.sourceSHA256 = sourceSHA256
    }

    /// "LoRA rank 8, alpha 16 on qkv_proj, out_proj", for elm-run's log and the app.
    public var summary: String {
        var kind = dora ? "DoRA" : "LoRA"
        kind += " rank \(rank), alpha \(Self.number(alpha))"
        if let quantization, quantization != "none" { kind += ", \(quantization)" }
        return targets.isEmpty ? kind : kind + " on " + targets.joined(separator: ", ")
    }

    /// 16 rather than 16.0.
    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// export.json's `merged_adapter`: an adapter baked into the base weights at export. Informational:
/// the base functions already run with it, so nothing is chosen or called differently.
public struct MergedAdapterInfo: Sendable, Equatable {
    public let name: String
    public let format: String?
    public let rank: Int?
    public let alpha: Double?
    public let targets: [String]
    public let sourcePath: String?

    public init(name: String, format: String? = nil, rank: Int? = nil, alpha: Double? = nil,
                targets: [String] = [], sourcePath: String? = nil) {
        self.name = name
        self.format = format
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.sourcePath = sourcePath
    }
}

extension ExportManifest {
    /// The adapter names, sorted: what elm-run and the app list.
    public var adapterNames: [String] { adapters.keys.sorted() }

    /// What runs, for logs: "adapter psalms (LoRA rank 8, alpha 16 on qkv_proj)", or "base weights"
    /// followed by the adapters the export offers.
    public func adapterDescription(_ names: FunctionNames) -> String {
        if let name = names.adapter {
            return "adapter \(name)" + (adapters[name].map { " (\($0.summary))" } ?? "")
        }
        return adapters.isEmpty ? "base weights" : "base weights (adapters: \(adapterNames.joined(separator: ", ")))"
    }

    /// `adapters`: absent, null or {} in exports without adapters (and in every export from before them).
    static func adapters(_ fields: JSONFields) throws -> [String: AdapterInfo] {
        guard let section = try fields.optionalObject("adapters") else { return [:] }
        var adapters: [String: AdapterInfo] = [:]
        for (name, _) in section.pairs {
            adapters[name] = try adapter(named: name, try section.object(name))
        }
        return adapters
    }

    private static func adapter(named name: String, _ fields: JSONFields) throws -> AdapterInfo {
        let functionFields = try fields.object("functions")
        var functions: [String: String] = [:]
        for (base, _) in functionFields.pairs {
            functions[base] = try functionFields.string(base)
        }
        let source = try fields.optionalObject("source")
        return AdapterInfo(name: name, functions: functions, format: try fields.optionalString("format"),
                           rank: try fields.int("rank"), alpha: try fields.double("alpha"),
                           scale: try fields.optionalDouble("scale"), targets: try fields.strings("targets"),
                           dora: try fields.bool("dora", default: false),
                           quantization: try fields.optionalString("quantization"), bytes: try fields.optionalInt("bytes"),
                           sourcePath: try source?.optionalString("path"), sourceSHA256: try source?.optionalString("sha256"))
    }

    /// `merged_adapter`: nil when absent or null.
    static func mergedAdapter(_ fields: JSONFields) throws -> MergedAdapterInfo? {
        guard let merged = try fields.optionalObject("merged_adapter") else { return nil }
        let source = try merged.optionalObject("source")
        return MergedAdapterInfo(name: try merged.string("name"), format: try merged.optionalString("format"),
                                 rank: try merged.optionalInt("rank"), alpha: try merged.optionalDouble("alpha"),
                                 targets: merged.optional("targets") == nil ? [] : try merged.strings("targets"),
                                 sourcePath: try source?.optionalString("path"))
    }
}
