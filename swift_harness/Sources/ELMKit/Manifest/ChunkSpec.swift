/// One package of an export: a run of consecutive transformer layers with its own prefill and
/// decode functions and its own state. An unsplit export has one chunk that takes token ids and
/// gives logits; a split one passes the hidden state from chunk to chunk.
public struct ChunkSpec: Sendable, Equatable {
    /// Names elm-export gives the tensors at the ends of a chunk.
    public static let inputIDs = "input_ids"
    public static let hiddenIn = "hidden_in"
    public static let hiddenOut = "hidden_out"
    public static let logits = "logits"
    public static let position = "position"
    /// The two states (the KV cache) every chunk has, shared by its prefill and decode functions.
    public static let keyCache = "key_cache"
    public static let valueCache = "value_cache"
    /// The ane target's inputs the caller computes (`NeuralEngineInputs`), and its embed functions.
    public static let rotary = "rotary"
    public static let mask = "mask"
    public static let embedPrefill = "embed_prefill"
    public static let embedDecode = "embed_decode"
    public static let embedVerify = "embed_verify"

    /// The package's file name, relative to the export folder: an .mlpackage (or compiled
    /// .mlmodelc) for Core ML, an .aimodel folder for Core AI.
    public let package: String
    /// Transformer layers `start..<stop`; nil only for a manifest written before chunks existed
    /// that does not say how many layers the model has.
    public let layers: Range<Int>?
    /// "input_ids" for the first chunk, "hidden_in" for the others.
    public let input: String
    /// "logits" for the last chunk, "hidden_out" for the others.
    public let output: String
    public let prefill: FunctionSpec
    public let decode: FunctionSpec
    /// K tokens at a position, like prefill, with logits for every row (speculative decoding);
    /// nil when the export has no verify function.
    public let verify: FunctionSpec?
    /// The ane target's token lookups, input_ids [1, T] → hidden_out [1, T, model_dim]: in the
    /// first chunk only, without states; nil otherwise (and in every gpu export).
    public let embedPrefill: FunctionSpec?
    public let embedDecode: FunctionSpec?
    public let embedVerify: FunctionSpec?
    public let states: [TensorSpec]
    public let packageBytes: Int?
    /// Content hash of this package's weight file (Core ML only; Core AI chunks list `files` alone).
    public let weightsSHA256: String?
    /// Every file of the package with its content hash (export.json's `files`); nil for manifests
    /// written before it was added. `CompiledModelKey` names the compiled-model cache entry from it.
    public let files: [PackageFile]?
    /// Every function export.json lists for this package, adapter functions included
    /// (`prefill_psalms`, ...); nil for a spec made without the listing.
    public let listedFunctions: Set<String>?

    public init(package: String, layers: Range<Int>?, input: String, output: String, prefill: FunctionSpec,
                decode: FunctionSpec, states: [TensorSpec], packageBytes: Int? = nil, weightsSHA256: String? = nil,
                files: [PackageFile]? = nil, embedPrefill: FunctionSpec? = nil, embedDecode: FunctionSpec? = nil,
                verify: FunctionSpec? = nil, embedVerify: FunctionSpec? = nil, listedFunctions: Set<String>? = nil) {
        self.package = package
        self.layers = layers
        self.input = input
        self.output = output
        self.prefill = prefill
        self.decode = decode
        self.states = states
        self.packageBytes = packageBytes
        self.weightsSHA256 = weightsSHA256
        self.files = files
        self.embedPrefill = embedPrefill
        self.embedDecode = embedDecode
        self.verify = verify
        self.embedVerify = embedVerify
        self.listedFunctions = listedFunctions
    }

    /// The function's spec; nil only for verify in an export without it.
    public func function(_ function: ModelFunction) -> FunctionSpec? {
        switch function {
        case .prefill: return prefill
        case .decode: return decode
        case .verify: return verify
        }
    }

    /// The embed function (ane, first chunk) that goes with `function`, nil when the chunk has none.
    public func embed(_ function: ModelFunction) -> FunctionSpec? {
        switch function {
        case .prefill: return embedPrefill
        case .decode: return embedDecode
        case .verify: return embedVerify
        }
    }

    /// "embed_prefill", "embed_decode" or "embed_verify".
    public static func embedFunctionName(_ function: ModelFunction) -> String { "embed_" + function.rawValue }

    /// The output `function` gives: the chunk's `output`, except where the function lacks it — the
    /// ane target's prefill of the last chunk gives hidden_out (nobody reads it) and no logits.
    public func outputName(of function: ModelFunction) -> String {
        self.function(function)?.output(output) != nil ? output : Self.hiddenOut
    }

    /// "layers 2-4" (inclusive, as the exporter's log writes it), or "" when unknown.
    public var layersDescription: String {
        guard let layers else { return "" }
        return layers.count == 1 ? "layer \(layers.lowerBound)" : "layers \(layers.lowerBound)-\(layers.upperBound - 1)"
    }
}

/// One file inside a package, as export.json lists it: the path relative to the `.mlpackage` or
/// `.aimodel` ("Data/com.apple.CoreML/model.mlmodel", "Manifest.json", ...) and the SHA-256 of its content.
public struct PackageFile: Sendable, Equatable {
    public let path: String
    /// Lowercase hex.
    public let sha256: String

    public init(path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256
    }
}

/// A function of a package; the raw value is its name in Core ML and Core AI alike. Every package
/// holds prefill and decode (`required`); verify only exports made for speculative decoding.
public enum ModelFunction: String, Sendable, CaseIterable {
    case prefill
    case decode
    case verify

    public static let required: [ModelFunction] = [.prefill, .decode]
}
