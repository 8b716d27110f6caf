import Foundation

/// export.json, written by elm-export next to the .mlpackage: what the Swift side needs to drive it.
public struct ExportManifest: Sendable {
    public static let supportedFormat = "elm-export/1"
    public static let fileName = "export.json"

    public let format: String
    public let name: String
    /// The .mlpackage (or compiled .mlmodelc) file name, relative to the export folder.
    public let package: String
    public let contextLength: Int
    public let prefillLength: Int
    public let vocabSize: Int
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    /// nil when the model was exported without a tokenizer.
    public let tokenizer: TokenizerInfo?
    public let prefill: FunctionSpec
    public let decode: FunctionSpec
    public let states: [TensorSpec]
    public let logitsPieces: Int
    public let logitsPieceSize: Int
    /// Optional content hash of the weights; used to name the compiled-model cache.
    public let weightsSHA256: String?

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
            throw ManifestError(source: file.path, reason: "file not found; pass the folder elm-export wrote (it holds export.json next to the .mlpackage)")
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
        package = try fields.string("package")
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
        let functions = try fields.object("functions")
        prefill = try Self.function(functions, "prefill")
        decode = try Self.function(functions, "decode")
        states = try fields.objects("states").map(TensorSpec.init)
        let layout = try fields.object("logits_layout")
        logitsPieces = try layout.int("pieces")
        logitsPieceSize = try layout.int("piece_size")
        weightsSHA256 = (try? fields.optionalString("weights_sha256")) ?? nil
        try validate(source: source)
    }

    private static func function(_ functions: JSONFields, _ name: String) throws -> FunctionSpec {
        let f = try functions.object(name)
        return FunctionSpec(inputs: try f.objects("inputs").map(TensorSpec.init),
                            outputs: try f.objects("outputs").map(TensorSpec.init))
    }

    /// Cross-field checks, so a mismatched manifest fails here rather than inside Core ML.
    private func validate(source: String) throws {
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
        for (name, function, tokens) in [("prefill", prefill, prefillLength), ("decode", decode, 1)] {
            guard let ids = function.input("input_ids") else { throw fail("functions.\(name) has no 'input_ids' input") }
            guard ids.shape == [1, tokens] else {
                throw fail("functions.\(name).input_ids has shape \(ids.shape), expected [1, \(tokens)]")
            }
            guard function.input("position") != nil else { throw fail("functions.\(name) has no 'position' input") }
            guard let logits = function.output("logits") else { throw fail("functions.\(name) has no 'logits' output") }
            guard logits.shape == [1, tokens, logitsPieces, logitsPieceSize] else {
                throw fail("functions.\(name).logits has shape \(logits.shape), expected [1, \(tokens), \(logitsPieces), \(logitsPieceSize)] from logits_layout")
            }
        }
    }
}
