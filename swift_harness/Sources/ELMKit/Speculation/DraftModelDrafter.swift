/// Drafts with a smaller model of the same vocabulary (another elm-export folder): its greedy
/// continuation of the context under the sampling's repetition penalty.
///
/// Its cache is kept between calls and only the context after the longest common prefix with what
/// it holds is fed: one token by decode; more (the prompt, or a context that changed early) all but
/// the last through prefill in chunks of `prefillLength` at position = chunk start, as `PromptPlan`
/// feeds a prompt without prefill logits, and the last through decode for its logits. Rewinding
/// is free: every call attends only to cache slots at or before its position (the mask is
/// position based), so entries past the common prefix are simply overwritten.
///
/// Each draft is the argmax (first index on ties) after the CTRL repetition penalty over the
/// context and the drafts before it, as `Sampler` applies it, so the drafts follow what a greedy
/// target picks under that penalty; 1 is plain argmax. The Python twin is
/// exporter.generate.drafters.DraftModelDrafter.
public final class DraftModelDrafter: Drafter {
    public let model: any LanguageModel
    public let name = "draft model"
    /// The sampling's repetition penalty, applied before each argmax (1: none).
    public let repetitionPenalty: Float
    /// Calls made to the draft model, by kind (only `prefill` and `decode` are used).
    public private(set) var modelCallCounts = ModelCallCounts()
    public var modelCalls: Int { modelCallCounts.prefill + modelCallCounts.decode }
    /// The token at each position of the draft model's cache.
    private var cached: [Int] = []

    public init(model: any LanguageModel, repetitionPenalty: Float = 1) {
        self.model = model
        self.repetitionPenalty = repetitionPenalty
    }

    /// Greedy tokens after `context` (penalized argmax, see the type): at most `count`, fewer where
    /// the draft model's context ends.
    public func draft(context: [Int], count: Int) throws -> [Int] {
        guard count > 0, !context.isEmpty, context.count <= model.contextLength else { return [] }
        // The newest context token is always fed: its logits give the first draft.
        var common = 0
        while common < min(cached.count, context.count - 1), cached[common] == context[common] { common += 1 }
        var logits = try catchUp(context, from: common)
        var drafts: [Int] = []
        while true {
            drafts.append(pick(logits, seen: context + drafts))
            // The newest draft sits at position context.count + drafts.count - 1.
            guard drafts.count < count, context.count + drafts.count - 1 < model.contextLength else { break }
            logits = try decode(drafts[drafts.count - 1])
        }
        return drafts
    }

    /// The calls that feed tokens start..<end into a cache holding the ones before: `PromptPlan`
    /// without prefill logits, shifted to `start` (a single token is one decode).
    public static func catchUpPlan(start: Int, end: Int, prefillLength: Int, contextLength: Int) -> [PromptCall] {
        guard prefillLength > 0 else { return (start..<end).map(PromptCall.decode) }
        let plan = PromptPlan.calls(promptLength: end - start, prefillLength: prefillLength,
                                    contextLength: contextLength - start, prefillGivesLogits: false)
        return plan.map { call in
            switch call {
            case .prefill(let range): return .prefill((range.lowerBound + start)..<(range.upperBound + start))
            case .decode(let position): return .decode(position + start)
            }
        }
    }

    private func pick(_ logits: [Float], seen: [Int]) -> Int {
        var scores = Array(logits.prefix(model.vocabularySize))
        Sampler.applyRepetitionPenalty(&scores, context: seen, penalty: repetitionPenalty)
        return Sampler.argmax(scores)
    }

    /// Feeds context[start...] at its positions; the logits after its last token.
    private func catchUp(_ context: [Int], from start: Int) throws -> [Float] {
        cached.removeSubrange(start...)
        var logits: [Float] = []
        let plan = Self.catchUpPlan(start: start, end: context.count, prefillLength: model.prefillLength,
                                    contextLength: model.contextLength)
        for call in plan {
            switch call {
            case .prefill(let range):
                _ = try model.prefill(tokens: context[range].map { Int32($0) }, position: range.lowerBound)  // rows unused
                modelCallCounts.prefill += 1
                cached += context[range]
            case .decode(let position):
                logits = try decode(context[position])  // position == cached.count
            }
        }
        return logits
    }

    /// Decodes `token` at the next position of the cache.
    private func decode(_ token: Int) throws -> [Float] {
        let logits = try model.decode(token: Int32(token), position: cached.count)
        modelCallCounts.decode += 1
        cached.append(token)
        return logits
    }
}
