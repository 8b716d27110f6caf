/// export.json's `generation` section: how the model's makers meant it to be run. Absent in
/// exports written before it (then callers keep their own defaults and plain text prompts).
public struct GenerationConfig: Sendable, Equatable {
    /// The chat template (a Jinja string, see `ChatTemplate`); nil for a base model.
    public let chatTemplate: String?
    /// Where the template came from (a file or checkpoint name), for messages.
    public let chatTemplateSource: String?
    public let defaults: GenerationDefaults
    /// Where each default came from ("temperature": "generation_config.json", ...).
    public let sources: [String: String]
    /// Tokens that end generation besides EOS (an instruct model's end-of-turn token, say).
    public let stopTokenIds: [Int]
    /// The strings the template writes for BOS and EOS ("<s>", "</s>").
    public let bosToken: String?
    public let eosToken: String?

    public init(chatTemplate: String? = nil, chatTemplateSource: String? = nil, defaults: GenerationDefaults = GenerationDefaults(),
                sources: [String: String] = [:], stopTokenIds: [Int] = [], bosToken: String? = nil, eosToken: String? = nil) {
        self.chatTemplate = chatTemplate
        self.chatTemplateSource = chatTemplateSource
        self.defaults = defaults
        self.sources = sources
        self.stopTokenIds = stopTokenIds
        self.bosToken = bosToken
        self.eosToken = eosToken
    }
}

/// `generation.defaults`: each field optional; what is missing keeps the caller's own default.
public struct GenerationDefaults: Sendable, Equatable {
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    public var maxNewTokens: Int?
    public var seed: UInt64?

    public init(temperature: Float? = nil, topK: Int? = nil, topP: Float? = nil, minP: Float? = nil,
                repetitionPenalty: Float? = nil, maxNewTokens: Int? = nil, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.maxNewTokens = maxNewTokens
        self.seed = seed
    }

    /// `base` with every default given here put in.
    public func applied(to base: SamplingParameters) -> SamplingParameters {
        var sampling = base
        if let temperature { sampling.temperature = temperature }
        if let topK { sampling.topK = topK }
        if let topP { sampling.topP = topP }
        if let minP { sampling.minP = minP }
        if let repetitionPenalty { sampling.repetitionPenalty = repetitionPenalty }
        if let seed { sampling.seed = seed }
        return sampling
    }
}

extension ExportManifest {
    /// The `generation` section, nil when absent or null.
    static func generationConfig(_ fields: JSONFields, vocabSize: Int, source: String) throws -> GenerationConfig? {
        guard let section = try fields.optionalObject("generation") else { return nil }
        let defaults = try section.optionalObject("defaults").map(generationDefaults) ?? GenerationDefaults()
        if let problem = defaults.applied(to: SamplingParameters()).problem {
            throw ManifestError(source: source, reason: "generation.defaults: \(problem); export the model again")
        }
        if let maxNewTokens = defaults.maxNewTokens, maxNewTokens < 1 {
            throw ManifestError(source: source, reason: "generation.defaults.max_new_tokens is \(maxNewTokens), expected at least 1")
        }
        let stops = try section.optional("stop_token_ids") == nil ? [] : section.ints("stop_token_ids")
        if let bad = stops.first(where: { !(0..<vocabSize).contains($0) }) {
            throw ManifestError(source: source, reason: "generation.stop_token_ids holds \(bad), outside the vocabulary of \(vocabSize)")
        }
        var sources: [String: String] = [:]
        for (name, value) in try section.optionalObject("sources")?.pairs ?? [] {
            guard let text = value.stringValue else {
                throw JSONFieldError.wrongType("generation.sources.\(name)", expected: "a string", found: value)
            }
            sources[name] = text
        }
        return GenerationConfig(chatTemplate: try section.optionalString("chat_template"),
                                chatTemplateSource: try section.optionalString("chat_template_source"),
                                defaults: defaults, sources: sources, stopTokenIds: stops,
                                bosToken: try section.optionalString("bos_token"), eosToken: try section.optionalString("eos_token"))
    }

    private static func generationDefaults(_ fields: JSONFields) throws -> GenerationDefaults {
        let seed = try fields.optionalInt("seed")
        if let seed, seed < 0 { throw JSONFieldError(path: fields.fieldPath("seed"), problem: "should be at least 0 but is \(seed)") }
        return GenerationDefaults(temperature: try fields.optionalDouble("temperature").map(Float.init),
                                  topK: try fields.optionalInt("top_k"),
                                  topP: try fields.optionalDouble("top_p").map(Float.init),
                                  minP: try fields.optionalDouble("min_p").map(Float.init),
                                  repetitionPenalty: try fields.optionalDouble("repetition_penalty").map(Float.init),
                                  maxNewTokens: try fields.optionalInt("max_new_tokens"),
                                  seed: seed.map(UInt64.init))
    }
}
