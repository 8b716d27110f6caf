/// Guesses the tokens that come next, so the model can check several in one `verify` call
/// (speculative decoding). A wrong guess costs only speed: `Generator` samples every emitted
/// token from the model's own logits, so the output is the one plain decoding gives.
///
/// A class: a drafter may keep state between calls (a draft model's cache).
public protocol Drafter: AnyObject {
    /// What stats lines call it: "prompt lookup", "draft model".
    var name: String { get }
    /// Calls made so far to a model of the drafter's own (0 for one without a model).
    var modelCalls: Int { get }
    /// Up to `count` tokens guessed to follow `context` (the prompt and every token generated so
    /// far); fewer, or none, when it has no guess.
    func draft(context: [Int], count: Int) throws -> [Int]
}

extension Drafter {
    public var modelCalls: Int { 0 }
}

/// Prompt lookup decoding (Saxena 2023): when the last few tokens appeared earlier in the context,
/// guess that what followed them then follows now. Free, and good at text that quotes or repeats
/// its prompt (summaries, code edits, chat that refers back).
public final class PromptLookupDrafter: Drafter {
    /// The longest suffix of the context it looks for.
    public let maxNgram: Int
    public let name = "prompt lookup"

    public init(maxNgram: Int = 3) {
        precondition(maxNgram >= 1, "maxNgram must be at least 1")
        self.maxNgram = maxNgram
    }

    /// Longest suffix first (n = maxNgram ... 1, only n < context.count); for each, the most recent
    /// earlier occurrence; the tokens after the first match found, up to `count` of them.
    public func draft(context: [Int], count: Int) -> [Int] {
        guard count > 0 else { return [] }
        for n in stride(from: min(maxNgram, context.count - 1), through: 1, by: -1) {
            let suffix = context[(context.count - n)...]
            for start in stride(from: context.count - n - 1, through: 0, by: -1)
            where context[start..<(start + n)].elementsEqual(suffix) {
                let follow = start + n
                return Array(context[follow..<min(follow + count, context.count)])
            }
        }
        return []
    }
}
