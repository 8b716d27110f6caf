import Foundation

/// export.json, written by elm-export next to the packages: what the Swift side needs to drive them.
/// A folder may hold the model for Core ML (.mlpackage), for Core AI (.aimodel), or both; both are
/// driven the same way (see `ChunkedLanguageModel`).
public struct ExportManifest: Sendable {
    public static let supportedFormat = "elm-export/1"
    public static let fileName = "export.json"

    public let format: String
    public let name: String
    public let contextLength: Int
    public let prefillLength: Int
    public let vocabSize: Int
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    /// nil when the model was exported without a tokenizer.
    public let tokenizer: TokenizerInfo?
    /// What the folder holds (export.json's `formats`); ["coreml"] for manifests written before Core AI.
    public let formats: [ExportFormat]
    /// The Core ML packages in calling order: one for an unsplit export, several for
    /// `--max-chunk-bytes`; empty when the folder holds no Core ML model. Every call runs all of
    /// them with the same function and position, each on its own state.
    public let chunks: [ChunkSpec]
    /// The Core AI model (export.json's `coreai`), nil when the folder holds none.
    public let coreAI: CoreAIExport?
    /// `model.num_transformer_layers`, when the manifest has it.
    public let layerCount: Int?
    public let logitsPieces: Int
    public let logitsPieceSize: Int
    /// export.json's `graph`: how the functions are called (gpu for manifests without it).
    public let graph: GraphContract
    /// `model.head_dim`, `model.rope_freq_constant`, `model.model_dim`, when the manifest has them
    /// (an ane export needs the first two: the caller computes the rotary rows).
    public let headDim: Int?
    public let ropeFreqConstant: Double?
    public let modelDim: Int?
    /// export.json's `generation` (chat template, sampling defaults, stop tokens); nil in older exports.
    public let generation: GenerationConfig?
    /// export.json's `adapters`: LoRA adapters held as extra functions over the same weights,
    /// by name; empty when the export has none. Choose one with `FunctionNames`.
    public let adapters: [String: AdapterInfo]
    /// export.json's `merged_adapter`: an adapter already baked into the base weights (informational).
    public let mergedAdapter: MergedAdapterInfo?
    /// `verify_length` as written (top level, else `graph`), whether or not the chunks have verify.
    let declaredVerifyLength: Int?

    /// Tokens one verify call takes (speculative decoding); nil when the export has no verify function.
    public var verifyLength: Int? { hasVerify ? declaredVerifyLength : nil }

    /// True when every package has a verify function (validation allows all or none).
    public var hasVerify: Bool {
        let all = formats.flatMap { chunks(for: $0) }
        return !all.isEmpty && all.allSatisfy { $0.verify != nil }
    }

    /// The graph the export was built as: gpu (ids in, logits from prefill and decode) or ane.
    public var graphTarget: GraphTarget { graph.target }

    /// The rotary and mask inputs an ane export takes each call; nil for gpu.
    public var neuralEngineInputs: NeuralEngineInputs? { NeuralEngineInputs(manifest: self) }

    /// The packages of `format` in calling order (empty when the folder does not hold it).
    public func chunks(for format: ExportFormat) -> [ChunkSpec] {
        switch format {
        case .coreML: return chunks
        case .coreAI: return coreAI?.chunks ?? []
        }
    }

    /// The format the no-argument conveniences below describe: Core ML when the folder holds it
    /// (what readers before Core AI expect), else Core AI.
    public var primaryFormat: ExportFormat { formats.contains(.coreML) ? .coreML : .coreAI }

    /// True when `format`'s model is split over several packages.
    public func isSplit(_ format: ExportFormat) -> Bool { chunks(for: format).count > 1 }

    /// True when the primary format's model is split over several packages.
    public var isSplit: Bool { isSplit(primaryFormat) }

    /// Bytes of all of `format`'s packages together, when the manifest gives each package's size.
    public func packageBytes(_ format: ExportFormat) -> Int? {
        let formatChunks = chunks(for: format)
        let sizes = formatChunks.compactMap(\.packageBytes)
        return sizes.count == formatChunks.count ? sizes.reduce(0, +) : nil
    }

    /// Bytes of the primary format's packages together.
    public var packageBytes: Int? { packageBytes(primaryFormat) }

    public struct TokenizerInfo: Sendable {
        public let files: [String]
        public let addBOS: Bool
    }

    /// Reads `export.json` from an export folder, or the file itself.
    public static func load(from url: URL) throws -> ExportManifest {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let file = isDirectory.boolValue ? url.appendingPathComponent(fileName) : url
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ManifestError(source: file.path, reason: "file not found; pass the folder elm-export wrote (it holds export.json next to the .mlpackage or .aimodel files)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw ManifestError(source: file.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        return try ExportManifest(data: data, source: file.path)
    }

    public init(data: Data, source: String = fileName) throws {
        let root: JSONValue
        do {
            root = try JSONParser.parse(Array(data))
        } catch let error as JSONParseError {
            throw ManifestError(source: source, reason: "not valid JSON (\(error)); export the model again")
        }
        do {
            try self.init(root: root, source: source)
        } catch let error as JSONFieldError {
            throw ManifestError(source: source, reason: "\(error); export the model again with the current elm-export")
        }
    }

    private init(root: JSONValue, source: String) throws {
        let fields = try JSONFields(root)
        // Check the format first: a future layout may have moved every other field.
        format = try fields.string("format")
        guard format == Self.supportedFormat else {
            throw ManifestError(source: source, reason: "format '\(format)' is not supported (this ELMKit reads '\(Self.supportedFormat)'); update ELMKit or export with a matching elm-export")
        }
        name = try fields.string("name")
        contextLength = try fields.int("context_length")
        prefillLength = try fields.int("prefill_length")
        vocabSize = try fields.int("vocab_size")
        bosTokenId = try fields.optionalInt("bos_token_id")
        eosTokenId = try fields.optionalInt("eos_token_id")
        tokenizer = try Self.tokenizerInfo(fields)
        let layout = try fields.object("logits_layout")
        logitsPieces = try layout.int("pieces")
        logitsPieceSize = try layout.int("piece_size")
        let model = try fields.optionalObject("model")
        layerCount = try model?.optionalInt("num_transformer_layers")
        headDim = try model?.optionalInt("head_dim")
        ropeFreqConstant = try model?.optionalDouble("rope_freq_constant")
        modelDim = try model?.optionalInt("model_dim")
        graph = try Self.graphContract(fields, source: source)
        declaredVerifyLength = try Self.verifyLength(fields, graph: graph, source: source)
        generation = try Self.generationConfig(fields, vocabSize: vocabSize, source: source)
        formats = try Self.formats(fields, source: source)
        let coreML = try Self.coreMLChunks(fields, holdsCoreML: formats.contains(.coreML), layerCount: layerCount, source: source)
        chunks = coreML.chunks
        coreAI = try Self.coreAIExport(fields, holdsCoreAI: formats.contains(.coreAI), source: source)
        adapters = try Self.adapters(fields)
        mergedAdapter = try Self.mergedAdapter(fields)
        try validate(source: source, coreMLPaths: coreML.paths)
    }

    private static func tokenizerInfo(_ fields: JSONFields) throws -> TokenizerInfo? {
        guard let info = try fields.optionalObject("tokenizer") else { return nil }
        let files = try info.array("files").enumerated().map { i, v in
            guard let s = v.stringValue else { throw JSONFieldError.wrongType("tokenizer.files[\(i)]", expected: "a string", found: v) }
            return s
        }
        return TokenizerInfo(files: files, addBOS: try info.bool("add_bos", default: true))
    }

    /// The Core ML packages and where each was read from ("chunks[1]." or "" for the top level),
    /// so errors name the field to look at. Empty when `formats` has no "coreml".
    private static func coreMLChunks(_ fields: JSONFields, holdsCoreML: Bool, layerCount: Int?,
                                     source: String) throws -> (chunks: [ChunkSpec], paths: [String]) {
        guard holdsCoreML else {
            // A Core AI-only folder: the Core ML fields must be empty rather than describe packages it lacks.
            let listed = try fields.optional("chunks") == nil ? 0 : fields.array("chunks").count
            if listed > 0 || fields.optional("package") != nil {
                throw ManifestError(source: source, reason: "chunks or package describe Core ML packages but formats does not list 'coreml'; export the model again")
            }
            return ([], [])
        }
        guard fields.optional("chunks") != nil else {
            // Written before split exports existed: the top level is the one package.
            return ([try unsplitChunk(fields, layerCount: layerCount)], [""])
        }
        let entries = try fields.objects("chunks")
        let chunks = try entries.map(chunk)
        // One chunk: the top level describes the same package (for readers that predate chunks).
        if chunks.count == 1, let top = try fields.optionalString("package"), top != chunks[0].package {
            throw ManifestError(source: source, reason: "package '\(top)' and chunks[0].package '\(chunks[0].package)' differ; export the model again")
        }
        return (chunks, entries.map { $0.path + "." })
    }

    static func chunk(_ fields: JSONFields) throws -> ChunkSpec {
        let bounds = try fields.ints("layers")
        guard bounds.count == 2, bounds[0] >= 0, bounds[0] < bounds[1] else {
            throw JSONFieldError(path: fields.fieldPath("layers"), problem: "should be [start, stop] with 0 <= start < stop but is \(bounds)")
        }
        let functions = try fields.object("functions")
        return ChunkSpec(package: try fields.string("package"), layers: bounds[0]..<bounds[1],
                         input: try fields.string("input"), output: try fields.string("output"),
                         prefill: try function(functions, "prefill"), decode: try function(functions, "decode"),
                         states: try fields.objects("states").map(TensorSpec.init),
                         packageBytes: try fields.optionalInt("package_bytes"),
                         weightsSHA256: (try? fields.optionalString("weights_sha256")) ?? nil,
                         files: try packageFiles(fields),
                         embedPrefill: try optionalFunction(functions, ChunkSpec.embedPrefill),
                         embedDecode: try optionalFunction(functions, ChunkSpec.embedDecode),
                         verify: try optionalFunction(functions, ModelFunction.verify.rawValue),
                         embedVerify: try optionalFunction(functions, ChunkSpec.embedVerify),
                         listedFunctions: Set(functions.pairs.map(\.key)))
    }

    /// `verify_length` at the top level and in `graph`: either may be given; both must then agree.
    private static func verifyLength(_ fields: JSONFields, graph: GraphContract, source: String) throws -> Int? {
        let top = try fields.optionalInt("verify_length")
        if let top, let inGraph = graph.verifyLength, top != inGraph {
            throw ManifestError(source: source, reason: "verify_length is \(top) but graph.verify_length is \(inGraph); export the model again")
        }
        return top ?? graph.verifyLength
    }

    private static func unsplitChunk(_ fields: JSONFields, layerCount: Int?) throws -> ChunkSpec {
        let functions = try fields.object("functions")
        return ChunkSpec(package: try fields.string("package"), layers: layerCount.flatMap { $0 > 0 ? 0..<$0 : nil },
                         input: ChunkSpec.inputIDs, output: ChunkSpec.logits,
                         prefill: try function(functions, "prefill"), decode: try function(functions, "decode"),
                         states: try fields.objects("states").map(TensorSpec.init),
                         packageBytes: try fields.optionalInt("package_bytes"),
                         weightsSHA256: (try? fields.optionalString("weights_sha256")) ?? nil,
                         files: try packageFiles(fields),
                         verify: try optionalFunction(functions, ModelFunction.verify.rawValue),
                         listedFunctions: Set(functions.pairs.map(\.key)))
    }

    /// `files`: {"<path inside the package>": "<sha256>", ...}, or nil when the manifest predates it.
    private static func packageFiles(_ fields: JSONFields) throws -> [PackageFile]? {
        guard let files = try fields.optionalObject("files") else { return nil }
        return try files.pairs.map { path, value in
            guard let sha = value.stringValue, !sha.isEmpty, sha.allSatisfy(\.isHexDigit) else {
                throw JSONFieldError.wrongType("\(files.path)[\"\(path)\"]", expected: "a SHA-256 in hex", found: value)
            }
            return PackageFile(path: path, sha256: sha.lowercased())
        }
    }

    private static func optionalFunction(_ functions: JSONFields, _ name: String) throws -> FunctionSpec? {
        functions.optional(name) == nil ? nil : try function(functions, name)
    }

    private static func function(_ functions: JSONFields, _ name: String) throws -> FunctionSpec {
        let f = try functions.object(name)
        return FunctionSpec(inputs: try f.objects("inputs").map(TensorSpec.init),
                            outputs: try f.objects("outputs").map(TensorSpec.init))
    }
}
