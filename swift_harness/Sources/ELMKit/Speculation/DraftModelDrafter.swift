/// Drafts with a smaller model of the same vocabulary (another elm-export folder): its greedy
/// continuation of the context, one decode call per token.
///
/// Its cache is kept between calls and only the context after the longest common prefix with what
/// it holds is fed, so consecutive drafts cost one or two decodes for each token the target
/// accepted. Rewinding is free: every call attends only to cache slots at or before its position
/// (the mask is position based), so entries past the common prefix are simply overwritten.
public final class DraftModelDrafter: Drafter {
    public let model: any LanguageModel
    public let name = "draft model"
    public private(set) var modelCalls = 0
    /// The token at each position of the draft model's cache.
    private var cached: [Int] = []

    public init(model: any LanguageModel) {
        self.model = model
    }

    /// Greedy (argmax, first index on ties; no penalty) tokens after `context`: at most `count`,
    /// fewer where the draft model's context ends.
    public func draft(context: [Int], count: Int) throws -> [Int] {
        guard count > 0, !context.isEmpty, context.count <= model.contextLength else { return [] }
        // The newest context token is always fed: its logits give the first draft.
        var common = 0
        while common < min(cached.count, context.count - 1), cached[common] == context[common] { common += 1 }
        cached.removeSubrange(common...)
        var logits: [Float] = []
        for token in context[common...] { logits = try feed(token) }
        var drafts: [Int] = []
        while true {
            drafts.append(Sampler.argmax(Array(logits.prefix(model.vocabularySize))))
            // The newest draft sits at position context.count + drafts.count - 1.
            guard drafts.count < count, context.count + drafts.count - 1 < model.contextLength else { break }
            logits = try feed(drafts[drafts.count - 1])
        }
        return drafts
    }

    /// Decodes `token` at the next position of the cache.
    private func feed(_ token: Int) throws -> [Float] {
        let logits = try model.decode(token: Int32(token), position: cached.count)
        modelCalls += 1
        cached.append(token)
        return logits
    }
}
