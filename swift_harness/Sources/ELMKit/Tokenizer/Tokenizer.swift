import Foundation

/// A LLaMA-style Hugging Face tokenizer (tokenizer.json) whose `encode` and `decode` give exactly
/// what Python's `tokenizers` gives for the same file.
///
/// Pipeline, as in HF: split the text around added tokens (<s>, </s>, ...) → normalize each
/// remaining piece (Prepend "▁", Replace " " → "▁") → BPE by merge rank, with byte fallback →
/// template (BOS in front). Decoding: token strings → decoder chain (Replace "▁" → " ",
/// ByteFallback, Fuse, Strip one leading space).
public struct Tokenizer: Sendable {
    private let model: BytePairModel
    private let normalizer: Normalizer?
    private let rawSplitter: AddedTokenSplitter
    private let normalizedSplitter: AddedTokenSplitter
    private let postProcessor: PostProcessor
    private let decoder: TokenDecoder?
    private let addedTokens: [Int: AddedToken]
    private let specialContents: Set<[UInt8]>

    /// Beginning-of-sequence id: the first special token the template adds, or "<s>".
    public let bosTokenId: Int?
    /// End-of-sequence id: "</s>" unless tokenizer_config.json names another.
    public let eosTokenId: Int?

    /// Loads `tokenizer.json`; when `url` is a folder, reads `tokenizer.json` in it and, if present,
    /// the BOS/EOS names from `tokenizer_config.json`.
    public init(contentsOf url: URL) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let file = isDirectory.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard exists, FileManager.default.fileExists(atPath: file.path) else {
            throw TokenizerError(source: file.path, reason: "file not found; the exported model folder should contain tokenizer.json (export with a tokenizer, or copy it from the Hugging Face checkpoint)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw TokenizerError(source: file.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        let config = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let names = try? SpecialTokenNames(configFile: config)
        try self.init(data: data, source: file.path, bosName: names?.bos, eosName: names?.eos)
    }

    /// Parses tokenizer.json content. `source` names the file in errors.
    public init(data: Data, source: String = "tokenizer.json", bosName: String? = nil, eosName: String? = nil) throws {
        let root: JSONValue
        do {
            root = try JSONParser.parse(Array(data))
        } catch let error as JSONParseError {
            throw TokenizerError(source: source, reason: "not valid JSON (\(error)); the file is damaged, download or export it again")
        }
        do {
            try self.init(root: root, source: source, bosName: bosName, eosName: eosName)
        } catch let error as JSONFieldError {
            throw TokenizerError(source: source, reason: "\(error); this is not a Hugging Face tokenizer.json ELMKit can read")
        }
    }

    private init(root: JSONValue, source: String, bosName: String?, eosName: String?) throws {
        let fields = try JSONFields(root)
        model = try BytePairModel(try fields.object("model"), source: source)
        if let preTokenizer = try fields.optionalObject("pre_tokenizer") {
            throw TokenizerError.unsupported(source, "pre_tokenizer type '\(try preTokenizer.string("type"))'")
        }
        normalizer = try Normalizer.parse(fields.optional("normalizer"), source: source)
        postProcessor = try PostProcessor.parse(fields.optional("post_processor"), source: source)
        decoder = try TokenDecoder.parse(fields.optional("decoder"), source: source)

        let normalizer = self.normalizer
        let added = try (fields.optional("added_tokens") == nil ? [] : fields.objects("added_tokens"))
            .map { try AddedToken($0).normalized(by: normalizer) }
        rawSplitter = AddedTokenSplitter(added.filter { !$0.normalized })
        normalizedSplitter = AddedTokenSplitter(added.filter { $0.normalized })
        addedTokens = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        // HF checks the decoded token string against the special tokens' raw contents, so a
        // special token that normalization changed is not skipped; the same happens here.
        specialContents = Set(added.filter(\.special).map(\.content))

        let vocab = model.vocab
        let id = { (name: String) -> Int? in
            let bytes = Array(name.utf8)
            return added.last(where: { $0.content == bytes || $0.text == bytes })?.id ?? vocab[bytes]
        }
        bosTokenId = bosName.flatMap(id) ?? postProcessor.prefix.first ?? id("<s>")
        eosTokenId = eosName.flatMap(id) ?? id("</s>")
    }

    /// One more than the largest id of the vocabulary and added tokens.
    public var vocabularySize: Int {
        max(model.tokens.keys.max() ?? -1, addedTokens.keys.max() ?? -1) + 1
    }

    /// The token string of `id` ("▁the", "<0x0A>", "<s>"), nil for an unknown id.
    public func tokenString(for id: Int) -> String? {
        (addedTokens[id]?.text ?? model.tokens[id]).map(UTF8Bytes.string)
    }

    /// Token ids of `text`; `addBOS` applies the template (HF's `add_special_tokens`).
    public func encode(_ text: String, addBOS: Bool = true) -> [Int] {
        var ids: [Int] = []
        for segment in rawSplitter.split(Array(text.utf8)) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                let normalized = normalizer?.apply(raw) ?? raw
                for piece in normalizedSplitter.split(normalized) {
                    switch piece {
                    case .token(let id): ids.append(id)
                    case .text(let bytes): ids += model.tokenize(bytes)
                    }
                }
            }
        }
        return addBOS ? postProcessor.prefix + ids + postProcessor.suffix : ids
    }

    /// Text of `ids`. Unknown ids are dropped and special tokens skipped unless asked for, as in HF.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        let tokens: [[UInt8]] = ids.compactMap { id in
            guard let token = addedTokens[id]?.text ?? model.tokens[id] else { return nil }
            if skipSpecialTokens && specialContents.contains(token) { return nil }
            return token
        }
        guard let decoder else {
            return tokens.map(UTF8Bytes.string).joined(separator: " ")  // HF's fallback without a decoder
        }
        return UTF8Bytes.string(decoder.decodeChain(tokens).flatMap { $0 })
    }
}
