/// One generation in progress: the context, the sampler, what was generated, the stop checks and
/// the timing. Both ways of getting logits (a decode per token, or verify calls when speculating)
/// hand every token to the same `sample` and `emit`, so they stop alike and choose alike.
struct GenerationRun {
    private let options: GenerationOptions
    private let stopTokens: Set<Int>
    private let contextLength: Int
    private var sampler: Sampler
    private var textDecoder: IncrementalDecoder?
    /// The prompt and every token emitted; the newest is not yet fed to the model.
    private(set) var context: [Int]
    private(set) var generated: [Int] = []
    private(set) var stopReason = StopReason.maxTokens
    var stats: GenerationStats
    private let clock: ContinuousClock
    private let start: ContinuousClock.Instant
    /// When the first token was chosen, moved later by the time spent in `onToken`.
    private var decodeStart: ContinuousClock.Instant

    init(prompt: [Int], options: GenerationOptions, contextLength: Int, tokenizer: Tokenizer?, stats: GenerationStats,
         clock: ContinuousClock, start: ContinuousClock.Instant) {
        self.options = options
        stopTokens = options.allStopTokenIds
        self.contextLength = contextLength
        sampler = Sampler(parameters: options.sampling)
        textDecoder = tokenizer.map(IncrementalDecoder.init)
        context = prompt
        self.stats = stats
        self.clock = clock
        self.start = start
        decodeStart = start
    }

    /// The newest token, the next to feed, and its position.
    var newest: (token: Int, position: Int) { (context[context.count - 1], context.count - 1) }

    /// The next token for `logits` (one row, cut to the vocabulary) after the current context.
    mutating func sample(_ logits: [Float]) -> Int {
        sampler.next(logits: logits, context: context)
    }

    /// Adds `token`, streams it and applies the stop checks; false when generation ends with it.
    mutating func emit(_ token: Int, onToken: (GeneratedToken) -> Bool) -> Bool {
        if generated.isEmpty {
            decodeStart = clock.now
            stats.timeToFirstTokenSeconds = (decodeStart - start).seconds
        }
        generated.append(token)
        context.append(token)
        let delta = textDecoder?.append(token) ?? ""
        let pause = clock.now  // time spent in the callback is not the model's
        if !onToken(GeneratedToken(id: token, text: delta, index: generated.count - 1)) {
            stopReason = .cancelled
            return false
        }
        decodeStart += clock.now - pause
        if stopTokens.contains(token) { stopReason = .endOfSequence; return false }
        if generated.count >= options.maxNewTokens { stopReason = .maxTokens; return false }
        if context.count >= contextLength { stopReason = .contextFull; return false }
        return true
    }

    /// The result, with the final stats.
    mutating func finish(tokenizer: Tokenizer?) -> GenerationResult {
        if !generated.isEmpty { stats.decodeSeconds = (clock.now - decodeStart).seconds }
        stats.generatedTokens = generated.count
        let text = tokenizer?.decode(generated) ?? ""
        return GenerationResult(tokens: generated, text: text, stopReason: stopReason, stats: stats)
    }
}
