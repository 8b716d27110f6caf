import Foundation

/// export.json, written by elm-export next to the .mlpackage(s): what the Swift side needs to drive them.
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
    /// The packages in calling order: one for an unsplit export, several for `--max-chunk-bytes`.
    /// Every call runs all of them with the same function and position, each on its own state.
    public let chunks: [ChunkSpec]
    /// `model.num_transformer_layers`, when the manifest has it.
    public let layerCount: Int?
    public let logitsPieces: Int
    public let logitsPieceSize: Int

    /// True when the model is split over several packages.
    public var isSplit: Bool { chunks.count > 1 }

    /// Bytes of all packages together, when the manifest gives each package's size.
    public var packageBytes: Int? {
        let sizes = chunks.compactMap(\.packageBytes)
        return sizes.count == chunks.count ? sizes.reduce(0, +) : nil
    }

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
            throw ManifestError(source: file.path, reason: "file not found; pass the folder elm-export wrote (it holds export.json next to the .mlpackage files)")
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
        if let info = try fields.optionalObject("tokenizer") {
            let files = try info.array("files").enumerated().map { i, v in
                guard let s = v.stringValue else { throw JSONFieldError.wrongType("tokenizer.files[\(i)]", expected: "a string", found: v) }
                return s
            }
            tokenizer = TokenizerInfo(files: files, addBOS: try info.bool("add_bos", default: true))
        } else {
            tokenizer = nil
        }
        let layout = try fields.object("logits_layout")
        logitsPieces = try layout.int("pieces")
        logitsPieceSize = try layout.int("piece_size")
        layerCount = try fields.optionalObject("model")?.optionalInt("num_transformer_layers")
        // Where each chunk was read from, so errors name the field to look at.
        let paths: [String]
        if fields.optional("chunks") != nil {
            let entries = try fields.objects("chunks")
            chunks = try entries.map(Self.chunk)
            paths = entries.map { $0.path + "." }
            // One chunk: the top level describes the same package (for readers that predate chunks).
            if chunks.count == 1, let top = try fields.optionalString("package"), top != chunks[0].package {
                throw ManifestError(source: source, reason: "package '\(top)' and chunks[0].package '\(chunks[0].package)' differ; export the model again")
            }
        } else {
            // Written before split exports existed: the top level is the one package.
            chunks = [try Self.unsplitChunk(fields, layerCount: layerCount)]
            paths = [""]
        }
        try validate(source: source, paths: paths)
    }

    private static func chunk(_ fields: JSONFields) throws -> ChunkSpec {
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
                         files: try packageFiles(fields))
    }

    private static func unsplitChunk(_ fields: JSONFields, layerCount: Int?) throws -> ChunkSpec {
        let functions = try fields.object("functions")
        return ChunkSpec(package: try fields.string("package"), layers: layerCount.flatMap { $0 > 0 ? 0..<$0 : nil },
                         input: ChunkSpec.inputIDs, output: ChunkSpec.logits,
                         prefill: try function(functions, "prefill"), decode: try function(functions, "decode"),
                         states: try fields.objects("states").map(TensorSpec.init),
                         packageBytes: try fields.optionalInt("package_bytes"),
                         weightsSHA256: (try? fields.optionalString("weights_sha256")) ?? nil,
                         files: try packageFiles(fields))
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

    private static func function(_ functions: JSONFields, _ name: String) throws -> FunctionSpec {
        let f = try functions.object(name)
        return FunctionSpec(inputs: try f.objects("inputs").map(TensorSpec.init),
                            outputs: try f.objects("outputs").map(TensorSpec.init))
    }

    /// Cross-field checks, so a mismatched manifest fails here rather than inside Core ML.
    /// `paths[i]` is where chunk i was read ("chunks[1]." or "" for the top level).
    private func validate(source: String, paths: [String]) throws {
        func fail(_ reason: String) -> ManifestError { ManifestError(source: source, reason: reason) }
        guard contextLength > 0, prefillLength > 0, vocabSize > 0 else {
            throw fail("context_length, prefill_length and vocab_size must be positive")
        }
        guard prefillLength <= contextLength else {
            throw fail("prefill_length \(prefillLength) is larger than context_length \(contextLength)")
        }
        guard logitsPieces > 0, logitsPieceSize > 0, logitsPieces * logitsPieceSize >= vocabSize else {
            throw fail("logits_layout (\(logitsPieces) pieces × \(logitsPieceSize)) does not cover vocab_size \(vocabSize)")
        }
        guard !chunks.isEmpty else { throw fail("chunks is empty; export the model again") }
        for (i, chunk) in chunks.enumerated() {
            let path = paths[i]
            let isFirst = i == 0, isLast = i == chunks.count - 1
            let wantedInput = isFirst ? ChunkSpec.inputIDs : ChunkSpec.hiddenIn
            guard chunk.input == wantedInput else {
                throw fail("\(path)input is '\(chunk.input)', expected '\(wantedInput)': the first chunk takes the token ids, each later one the hidden state of the chunk before it")
            }
            let wantedOutput = isLast ? ChunkSpec.logits : ChunkSpec.hiddenOut
            guard chunk.output == wantedOutput else {
                throw fail("\(path)output is '\(chunk.output)', expected '\(wantedOutput)': the last chunk gives the logits, each earlier one the hidden state for the chunk after it")
            }
            try validateLayers(i, path: path, fail: fail)
            for (function, tokens) in [(ModelFunction.prefill, prefillLength), (.decode, 1)] {
                let spec = chunk.function(function)
                let at = "\(path)functions.\(function.rawValue)"
                guard let input = spec.input(chunk.input) else { throw fail("\(at) has no '\(chunk.input)' input") }
                if isFirst {
                    guard input.shape == [1, tokens] else {
                        throw fail("\(at).input_ids has shape \(input.shape), expected [1, \(tokens)]")
                    }
                    guard input.dtype == "int32" else { throw fail("\(at).input_ids is \(input.dtype), expected int32") }
                } else {
                    // The hand-off: exactly what the chunk before gives (validated on the previous turn).
                    let previous = chunks[i - 1].function(function).output(ChunkSpec.hiddenOut)!
                    guard input.shape == previous.shape, input.dtype == previous.dtype else {
                        throw fail("\(at).hidden_in is \(input.dtype) \(input.shape) but \(paths[i - 1])functions.\(function.rawValue).hidden_out is \(previous.dtype) \(previous.shape); the chunks do not fit together")
                    }
                }
                guard let position = spec.input(ChunkSpec.position) else { throw fail("\(at) has no 'position' input") }
                guard position.dtype == "int32" else { throw fail("\(at).position is \(position.dtype), expected int32") }
                guard let output = spec.output(chunk.output) else { throw fail("\(at) has no '\(chunk.output)' output") }
                if isLast {
                    guard output.shape == [1, tokens, logitsPieces, logitsPieceSize] else {
                        throw fail("\(at).logits has shape \(output.shape), expected [1, \(tokens), \(logitsPieces), \(logitsPieceSize)] from logits_layout")
                    }
                } else {
                    guard output.shape.count == 3, output.shape[0] == 1, output.shape[1] == tokens, output.shape[2] > 0 else {
                        throw fail("\(at).hidden_out has shape \(output.shape), expected [1, \(tokens), model_dim]")
                    }
                }
            }
        }
    }

    /// Chunk i's layers start where chunk i-1's stop (the first at 0) and the last stops at the layer count.
    private func validateLayers(_ i: Int, path: String, fail: (String) -> ManifestError) throws {
        guard let layers = chunks[i].layers else { return }
        if i == 0 {
            guard layers.lowerBound == 0 else {
                throw fail("\(path)layers start at \(layers.lowerBound); the first chunk must start at layer 0")
            }
        } else if let previous = chunks[i - 1].layers, layers.lowerBound != previous.upperBound {
            throw fail("\(path)layers [\(layers.lowerBound), \(layers.upperBound)] do not continue the chunk before it, [\(previous.lowerBound), \(previous.upperBound)]: each chunk must start at the layer where the one before stops")
        }
        if i == chunks.count - 1, let layerCount, layers.upperBound != layerCount {
            throw fail("\(path)layers stop at \(layers.upperBound) but the model has \(layerCount) layers; the chunks must cover them all")
        }
    }
}
