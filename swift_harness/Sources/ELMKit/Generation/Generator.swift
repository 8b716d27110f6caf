import Foundation

/// Runs a `LanguageModel`: chunked prefill of the prompt, then decode steps, streaming each token.
///
/// Driving rules (export.json "elm-export/1"): the prompt is cut into chunks of `prefillLength`
/// fed at position = chunk start (the model pads the last one); the next-token logits are the
/// row of the last real token; each new token is then fed at its index in the sequence. A model
/// whose prefill gives no logits (an ane export) gets every prompt token but the last through
/// prefill, and the last through decode, which gives the logits (`PromptPlan`). The
/// sequence never grows past `contextLength` tokens (as the Python reference's `generate`).
///
/// One generation at a time: a model's calls share its state (Core ML's MLState.h: predictions
/// that use the same state must be serialised), and a generation's calls must not interleave with
/// another's. `generate` holds a lock for its whole run, and the background generations of
/// `stream` run one after another on the generator's own serial queue, each starting once the one
/// before has stopped calling the model. Share a model between two `Generator`s only if they are
/// never used at the same time.
public final class Generator: @unchecked Sendable {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer?
    private let clock = ContinuousClock()
    /// Held for the whole of `generate`.
    private let generating = NSLock()
    /// Where `stream` runs generations, in order. A generation blocks its thread for its whole run
    /// (model calls are synchronous), so it runs here rather than on Swift's few cooperative threads.
    private let queue = DispatchQueue(label: "ELMKit.Generator", qos: .userInitiated)

    public init(model: any LanguageModel, tokenizer: Tokenizer? = nil) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates after `promptTokens` (which already hold BOS if the model wants it).
    /// `onToken` sees every new token as it is chosen; return false from it to stop.
    @discardableResult
    public func generate(promptTokens: [Int], options: GenerationOptions, loadSeconds: Double = 0,
                         onToken: (GeneratedToken) -> Bool = { _ in true }) throws -> GenerationResult {
        // Not re-entrant: calling generate from `onToken` on the same Generator deadlocks.
        generating.lock()
        defer { generating.unlock() }
        if let problem = options.sampling.problem { throw GenerationError.invalidSampling(problem) }
        guard !promptTokens.isEmpty else { throw GenerationError.emptyPrompt }
        guard promptTokens.count < model.contextLength else {
            throw GenerationError.promptTooLong(tokens: promptTokens.count, contextLength: model.contextLength)
        }
        var stats = GenerationStats(loadSeconds: loadSeconds, promptTokens: promptTokens.count, prefillSeconds: 0,
                                    timeToFirstTokenSeconds: 0, generatedTokens: 0, decodeSteps: 0, decodeSeconds: 0)
        let start = clock.now
        try model.reset()
        var logits = try prefill(promptTokens)
        stats.prefillSeconds = (clock.now - start).seconds

        var sampler = Sampler(parameters: options.sampling)
        var textDecoder = tokenizer.map(IncrementalDecoder.init)
        var context = promptTokens
        var generated: [Int] = []
        var stopReason = StopReason.maxTokens
        var decodeStart = clock.now

        while generated.count < options.maxNewTokens {
            let token = sampler.next(logits: logits, context: context)
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
                break
            }
            decodeStart += clock.now - pause
            if token == options.eosTokenId { stopReason = .endOfSequence; break }
            if generated.count >= options.maxNewTokens { stopReason = .maxTokens; break }
            if context.count >= model.contextLength { stopReason = .contextFull; break }
            logits = try row(model.decode(token: Int32(token), position: context.count - 1), "decode")
            stats.decodeSteps += 1
        }
        if !generated.isEmpty { stats.decodeSeconds = (clock.now - decodeStart).seconds }
        stats.generatedTokens = generated.count
        let text = tokenizer?.decode(generated) ?? ""
        return GenerationResult(tokens: generated, text: text, stopReason: stopReason, stats: stats)
    }

    /// Runs `body` on the generator's serial queue, after every run enqueued before it.
    func enqueue(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }

    /// Returns once every generation `stream` started before this call has stopped calling the
    /// model. A consumer that stops iterating (or whose task is cancelled) leaves the stream at
    /// once, while the model call in flight runs to its end (a Core ML prediction cannot be
    /// interrupted); await this before touching the model yourself.
    public func waitUntilIdle() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async { done.resume() }
        }
    }

    /// Feeds the prompt and returns the logits after its last token, calling the model as
    /// `PromptPlan` says (gpu: prefill gives them; ane: the last prompt token's decode does).
    private func prefill(_ tokens: [Int]) throws -> [Float] {
        let chunkLength = model.prefillLength
        guard chunkLength > 0 else { throw GenerationError.modelOutput("prefillLength is \(chunkLength)") }
        let givesLogits = model.prefillGivesLogits
        var logits: [Float] = []
        let plan = PromptPlan.calls(promptLength: tokens.count, prefillLength: chunkLength,
                                    contextLength: model.contextLength, prefillGivesLogits: givesLogits)
        for call in plan {
            switch call {
            case .prefill(let range):
                let chunk = tokens[range].map { Int32($0) }
                let rows = try model.prefill(tokens: chunk, position: range.lowerBound)
                guard givesLogits else { continue }  // ane: the cache is written, no logits to read
                guard rows.count == chunk.count else {
                    throw GenerationError.modelOutput("prefill of \(chunk.count) tokens returned \(rows.count) logits rows")
                }
                logits = try row(rows[chunk.count - 1], "prefill")
            case .decode(let position):
                logits = try row(model.decode(token: Int32(tokens[position]), position: position), "decode")
            }
        }
        return logits
    }

    /// A logits row cut to the vocabulary (the model may pad it).
    private func row(_ logits: [Float], _ function: String) throws -> [Float] {
        let vocabulary = model.vocabularySize
        guard logits.count >= vocabulary else {
            throw GenerationError.modelOutput("\(function) returned \(logits.count) logits for a vocabulary of \(vocabulary)")
        }
        return logits.count == vocabulary ? logits : Array(logits[..<vocabulary])
    }
}
