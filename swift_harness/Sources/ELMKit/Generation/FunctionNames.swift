/// Which function of a package runs in place of each base function: the base function itself, or,
/// with a LoRA adapter chosen, the adapter's function over the same weights (export.json's
/// `adapters[name].functions`). Every place that loads a function by name (Core ML, Core AI, and
/// so every chunk of a split export) asks this, so an adapter is applied in one place.
public struct FunctionNames: Sendable, Equatable, CustomStringConvertible {
    /// The chosen adapter; nil runs the base functions, exactly as an export without adapters.
    public let adapter: String?
    /// Base name → called name; empty for the base model.
    private let renamed: [String: String]

    /// The base functions, under their own names.
    public static let base = FunctionNames(adapter: nil, renamed: [:])

    private init(adapter: String?, renamed: [String: String]) {
        self.adapter = adapter
        self.renamed = renamed
    }

    /// The names for `adapter` of `manifest` (nil: the base functions).
    ///
    /// Throws `AdapterChoiceError` when the export has no adapter of that name (the message lists
    /// the ones it has), or when the adapter lacks a function the export calls: falling back to the
    /// base function there would quietly mix base and adapter outputs.
    public init(manifest: ExportManifest, adapter: String?) throws {
        guard let adapter else {
            self = .base
            return
        }
        guard let info = manifest.adapters[adapter] else {
            throw AdapterChoiceError.unknown(adapter, available: manifest.adapterNames)
        }
        let missing = Self.baseFunctions(of: manifest).filter { info.functions[$0] == nil }
        guard missing.isEmpty else { throw AdapterChoiceError.incomplete(adapter, missing: missing) }
        self.init(adapter: adapter, renamed: info.functions)
    }

    /// The function that runs in place of base function `baseName` ("decode", "embed_decode", ...).
    public func called(_ baseName: String) -> String { renamed[baseName] ?? baseName }

    /// The function called for `function`: "decode", or "decode_psalms" with adapter psalms.
    public func name(of function: ModelFunction) -> String { called(function.rawValue) }

    /// The ane embed function called for `function`: "embed_decode", or "embed_decode_psalms".
    public func embedName(of function: ModelFunction) -> String { called(ChunkSpec.embedFunctionName(function)) }

    /// "adapter psalms" or "base weights", for logs and status lines.
    public var description: String { adapter.map { "adapter \($0)" } ?? "base weights" }

    /// Every base function some package of the export has, in calling-order names: what an adapter must map.
    static func baseFunctions(of manifest: ExportManifest) -> [String] {
        var names: [String] = []
        for chunk in manifest.formats.flatMap({ manifest.chunks(for: $0) }) {
            for function in ModelFunction.allCases {
                if chunk.embed(function) != nil { names.append(ChunkSpec.embedFunctionName(function)) }
                if chunk.function(function) != nil { names.append(function.rawValue) }
            }
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// Why an adapter cannot be chosen; one line each, for elm-run's error output and the app's status.
public enum AdapterChoiceError: Error, Equatable, CustomStringConvertible {
    /// The export has no adapter of this name; `available` are the ones it has (sorted).
    case unknown(String, available: [String])
    /// The adapter maps no function for these base functions.
    case incomplete(String, missing: [String])

    public var description: String {
        switch self {
        case .unknown(let name, let available) where available.isEmpty:
            return "the export has no adapter '\(name)': it has no adapters at all (export.json's adapters is empty); run it without an adapter, or export it again with one"
        case .unknown(let name, let available):
            return "the export has no adapter '\(name)'; its adapters: \(available.joined(separator: ", "))"
        case .incomplete(let name, let missing):
            return "adapter '\(name)' names no function for \(missing.joined(separator: ", ")) (export.json's adapters.\(name).functions); export the model again"
        }
    }
}
