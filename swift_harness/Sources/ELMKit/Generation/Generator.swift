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
/// Speculative decoding (a `drafter`, and a model with `verifyLength` >= 2): instead of a decode,
/// each step feeds the newest token and up to verifyLength - 1 drafted ones in one verify call at
/// the newest token's position, and reads its rows while the drafts match what is sampled. The
/// sampler sees the same logits and context as in plain decoding, once per emitted token, so the
/// tokens are the same for any sampling settings; only the number of model calls changes.
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
    /// Guesses tokens for the model to check several at a time (`LanguageModel.verify`); nil, or a
    /// model without verify, means one decode call per token. Never changes the output.
    public let drafter: (any Drafter)?
    private let clock = ContinuousClock()
    /// Held for the whole of `generate`.
    private let generating = NSLock()
    /// Where `stream` runs generations, in order. A generation blocks its thread for its whole run
    /// (model calls are synchronous), so it runs here rather than on Swift's few cooperative threads.
    private let queue = DispatchQueue(label: "ELMKit.Generator", qos: .userInitiated)

    public init(model: any LanguageModel, tokenizer: Tokenizer? = nil, drafter: (any Drafter)? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.drafter = drafter
    }

    /// True when `generate` decodes speculatively: a drafter is set and the model verifies at
    /// least two tokens (the newest one and a draft) per call.
    public var speculates: Bool { drafter != nil && model.verifyLength >= 2 }

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
        let drafter = speculates ? self.drafter : nil
        stats.drafter = drafter?.name
        let draftCallsBefore = drafter?.modelCalls ?? 0
        let start = clock.now
        try model.reset()
        let logits = try prefill(promptTokens, calls: &stats.calls)
        stats.prefillSeconds = (clock.now - start).seconds

        var run = GenerationRun(prompt: promptTokens, options: options, contextLength: model.contextLength,
                                tokenizer: tokenizer, stats: stats, clock: clock, start: start)
        if options.maxNewTokens > 0, run.emit(run.sample(logits), onToken: onToken) {
            if let drafter {
                while try speculativeStep(&run, drafter: drafter, onToken: onToken) {}
            } else {
                while try decodeStep(&run, onToken: onToken) {}
            }
        }
        run.stats.calls.draft = (drafter?.modelCalls ?? 0) - draftCallsBefore
        return run.finish(tokenizer: tokenizer)
    }

    /// Feeds the newest token by decode and emits the token after it; false when generation ends.
    private func decodeStep(_ run: inout GenerationRun, onToken: (GeneratedToken) -> Bool) throws -> Bool {
        let (token, position) = run.newest
        let logits = try row(model.decode(token: Int32(token), position: position), "decode")
        run.stats.calls.decode += 1
        run.stats.decodeSteps += 1
        return run.emit(run.sample(logits), onToken: onToken)
    }

    /// Feeds the newest token t and the drafts after it in one verify call, then walks its rows:
    /// each row's token is sampled and emitted exactly as plain decoding would, and the walk goes
    /// on only while that token is the draft the next row was computed for. The last emitted
    /// token is the new, unfed newest. Falls back to a decode when there is no draft or the
    /// padded call would run past the context.
    private func speculativeStep(_ run: inout GenerationRun, drafter: any Drafter,
                                 onToken: (GeneratedToken) -> Bool) throws -> Bool {
        let (token, position) = run.newest
        let length = model.verifyLength
        guard position + length <= model.contextLength else { return try decodeStep(&run, onToken: onToken) }
        let drafts = Array(try drafter.draft(context: run.context, count: length - 1).prefix(length - 1))
        guard !drafts.isEmpty else { return try decodeStep(&run, onToken: onToken) }

        let rows = try model.verify(tokens: ([token] + drafts).map { Int32($0) }, position: position)
        run.stats.calls.verify += 1
        run.stats.draftsProposed += drafts.count
        guard rows.count == drafts.count + 1 else {
            throw GenerationError.modelOutput("verify of \(drafts.count + 1) tokens returned \(rows.count) logits rows")
        }
        for i in 0...drafts.count {
            let next = run.sample(try row(rows[i], "verify"))
            let accepted = i < drafts.count && next == drafts[i]
            if accepted { run.stats.draftsAccepted += 1 }
            guard run.emit(next, onToken: onToken) else { return false }
            guard accepted else { return true }
        }
        return true
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
    private func prefill(_ tokens: [Int], calls: inout ModelCallCounts) throws -> [Float] {
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
                calls.prefill += 1
                guard givesLogits else { continue }  // ane: the cache is written, no logits to read
                guard rows.count == chunk.count else {
                    throw GenerationError.modelOutput("prefill of \(chunk.count) tokens returned \(rows.count) logits rows")
                }
                logits = try row(rows[chunk.count - 1], "prefill")
            case .decode(let position):
                logits = try row(model.decode(token: Int32(tokens[position]), position: position), "decode")
                calls.decode += 1
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
