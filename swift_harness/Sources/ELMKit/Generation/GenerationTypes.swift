/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops after this token (it is included in the result's tokens); one of the stop tokens.
    public var eosTokenId: Int?
    /// More tokens that stop generation the same way (export.json's `generation.stop_token_ids`, elm-run's --stop-token).
    public var stopTokenIds: Set<Int>

    public init(maxNewTokens: Int, sampling: SamplingParameters = .greedy, eosTokenId: Int? = nil, stopTokenIds: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.eosTokenId = eosTokenId
        self.stopTokenIds = stopTokenIds
    }

    /// Every token that ends generation: `stopTokenIds` and `eosTokenId`.
    public var allStopTokenIds: Set<Int> {
        eosTokenId.map { stopTokenIds.union([$0]) } ?? stopTokenIds
    }
}

public enum StopReason: String, Sendable {
    case endOfSequence = "end of sequence"
    case maxTokens = "max tokens"
    case contextFull = "context full"
    case cancelled
}

/// One generated token as it is streamed: its id and the text it completes (often empty for byte pieces).
public struct GeneratedToken: Sendable {
    public let id: Int
    public let text: String
    /// 0 for the first generated token.
    public let index: Int
}

public struct GenerationResult: Sendable {
    /// Generated ids (not the prompt), including the EOS token when that is what stopped it.
    public let tokens: [Int]
    /// The generated text (special tokens skipped); empty without a tokenizer.
    public let text: String
    public let stopReason: StopReason
    public let stats: GenerationStats
}

public enum GenerationError: Error, CustomStringConvertible {
    case emptyPrompt
    case promptTooLong(tokens: Int, contextLength: Int)
    case invalidSampling(String)
    case modelOutput(String)
    /// `verify` was called on a model without a verify function.
    case verifyUnsupported

    public var description: String {
        switch self {
        case .emptyPrompt:
            return "the prompt has no tokens; give some text or keep the BOS token"
        case .promptTooLong(let tokens, let contextLength):
            return "the prompt is \(tokens) tokens but the model's context holds \(contextLength), leaving no room to generate; shorten the prompt"
        case .invalidSampling(let problem):
            return "invalid sampling settings: \(problem)"
        case .modelOutput(let problem):
            return "the model returned unexpected output: \(problem)"
        case .verifyUnsupported:
            return "the model has no verify function (speculative decoding); export it again with one, or run without speculation"
        }
    }
}
