import Testing
@testable import ELMKit

@Suite struct DrafterTests {
    @Test func promptLookupPrefersTheLongestSuffixAndTheMostRecentMatch() {
        let drafter = PromptLookupDrafter(maxNgram: 3)
        // The 3-gram [1, 2, 3] occurs at 0 and 5; the most recent (5) wins.
        #expect(drafter.draft(context: [1, 2, 3, 4, 9, 1, 2, 3, 8, 7, 1, 2, 3], count: 4) == [8, 7, 1, 2])
        // No earlier [5, 2, 3]; the 2-gram [2, 3] at 1 gives what followed it.
        #expect(drafter.draft(context: [0, 2, 3, 6, 6, 5, 2, 3], count: 2) == [6, 6])
        // The draft stops at the end of the context.
        #expect(drafter.draft(context: [4, 5, 4], count: 4) == [5, 4])
        // Only n < context.count; nothing found: no draft.
        #expect(drafter.draft(context: [7], count: 3) == [])
        #expect(drafter.draft(context: [1, 2, 3], count: 3) == [])
        #expect(drafter.draft(context: [1, 2, 1], count: 0) == [])
        #expect(PromptLookupDrafter(maxNgram: 1).draft(context: [1, 2, 3, 4, 9, 1, 2, 3, 8, 7, 1, 2, 3], count: 2) == [8, 7])
    }

    @Test func draftModelFeedsOnlyWhatItsCacheLacks() throws {
        let model = ScriptedLanguageModel(contextLength: 16, prefillLength: 4) { ($0 * 3) % 32 }
        let drafter = DraftModelDrafter(model: model)
        // Prefills positions 0-1, decodes 2 for the logits, then its own drafts at 3 and 4 (the last draft is not fed).
        #expect(try drafter.draft(context: [5, 6, 7], count: 3) == [6, 9, 12])
        #expect(model.calls == [.prefill(tokens: [5, 6], position: 0), .decode(token: 7, position: 2),
                                .decode(token: 6, position: 3), .decode(token: 9, position: 4)])
        // The target took 6 and then 4: only the tokens after the common prefix [5, 6, 7, 6] are fed.
        #expect(try drafter.draft(context: [5, 6, 7, 6, 4], count: 2) == [12, 15])  // predictions after positions 4 and 5
        #expect(Array(model.calls.suffix(2)) == [.decode(token: 4, position: 4), .decode(token: 12, position: 5)])
        // The same context again: only its newest token is fed again (for its logits).
        #expect(try drafter.draft(context: [5, 6, 7, 6, 4], count: 1) == [12])
        #expect(model.calls.last == .decode(token: 4, position: 4) && drafter.modelCalls == 7)
        #expect(drafter.modelCallCounts == ModelCallCounts(prefill: 1, decode: 6))
        #expect(drafter.name == "draft model")
    }

    @Test func draftModelStopsAtItsContextEnd() throws {
        let model = ScriptedLanguageModel(contextLength: 6, prefillLength: 4) { _ in 1 }
        let drafter = DraftModelDrafter(model: model)
        #expect(try drafter.draft(context: [2, 3, 4, 5], count: 4) == [1, 1, 1])  // drafts at positions 4, 5, 6
        #expect(model.calls == [.prefill(tokens: [2, 3, 4], position: 0), .decode(token: 5, position: 3),
                                .decode(token: 1, position: 4), .decode(token: 1, position: 5)])
        #expect(try drafter.draft(context: Array(0..<7), count: 2) == [])  // longer than its context
    }

    /// Catching up N > 1 tokens takes ceil((N - 1) / prefillLength) prefills and one decode, and
    /// drafts what feeding one token per call drafts, for either kind of prefill (ane: no logits).
    @Test(arguments: [(0, 2), (0, 9), (0, 10), (0, 25), (5, 2), (5, 17), (13, 30)], [true, false])
    func catchUpPrefillsAllButTheLastToken(_ span: (start: Int, count: Int), _ givesLogits: Bool) throws {
        let (start, count) = span
        let context = (0..<(start + count)).map { (7 * $0 + 3) % 16 }
        let fastModel = ContextHashModel(verifyLength: 0, prefillGivesLogits: givesLogits)
        let fast = DraftModelDrafter(model: fastModel)
        if start > 0 { _ = try fast.draft(context: Array(context[..<start]) + [(context[start] + 1) % 16], count: 2) }
        let before = (fast.modelCallCounts, fastModel.calls.count)
        let drafts = try fast.draft(context: context, count: 4)
        let slow = DraftModelDrafter(model: ContextHashModel(verifyLength: 0, prefillGivesLogits: givesLogits))
        for end in 1..<context.count { _ = try slow.draft(context: Array(context[..<end]), count: 1) }
        #expect(slow.modelCallCounts.prefill == 0)
        #expect(try slow.draft(context: context, count: 4) == drafts)
        let prefills = (count - 1 + 7) / 8  // prefillLength 8
        #expect(fast.modelCallCounts.prefill - before.0.prefill == prefills)
        #expect(fast.modelCallCounts.decode - before.0.decode == 1 + 3)
        let calls = Array(fastModel.calls[before.1...])
        let expected = stride(from: start, to: start + count - 1, by: 8).map {
            ContextHashModel.Call.prefill(position: $0, count: min(8, start + count - 1 - $0))
        }
        #expect(Array(calls.prefix(prefills)) == expected)
        #expect(calls[prefills] == .decode(token: Int32(context[context.count - 1]), position: context.count - 1))
    }

    @Test func catchUpNeverPadsPastTheCache() throws {
        let model = ScriptedLanguageModel(contextLength: 20, prefillLength: 8) { _ in 3 }
        #expect(try DraftModelDrafter(model: model).draft(context: Array(0..<20), count: 3) == [3])  // a full cache
        // A chunk at 16 would pad to slot 24: tokens 16-18 go through decode, as a prompt's would.
        let prefills: [ScriptedLanguageModel.Call] = [.prefill(tokens: (0..<8).map { Int32($0) }, position: 0),
                                                      .prefill(tokens: (8..<16).map { Int32($0) }, position: 8)]
        let decodes: [ScriptedLanguageModel.Call] = (16..<20).map { .decode(token: Int32($0), position: $0) }
        #expect(model.calls == prefills + decodes)
        #expect(DraftModelDrafter.catchUpPlan(start: 3, end: 4, prefillLength: 8, contextLength: 20) == [.decode(3)])
        #expect(DraftModelDrafter.catchUpPlan(start: 3, end: 13, prefillLength: 8, contextLength: 20)
                == [.prefill(3..<11), .prefill(11..<12), .decode(12)])
    }

    /// Token 1, the plain argmax, is in the context: under penalty 1.2 it drops to 4.17 and token 2
    /// (4.5) wins; drafts count as context too, as they do for the sampler.
    @Test func draftModelDraftsThePenalizedArgmax() throws {
        let logits: [Float] = [-1, 5, 4.5, 4.4, -0.5, 0]
        #expect(try DraftModelDrafter(model: FixedRowsModel(logits)).draft(context: [0, 1], count: 1) == [1])
        let penalized = DraftModelDrafter(model: FixedRowsModel(logits), repetitionPenalty: 1.2)
        #expect(try penalized.draft(context: [0, 1], count: 1) == [2])
        #expect(try penalized.draft(context: [0, 1], count: 3) == [2, 3, 1])
        // A negative logit is multiplied: token 1's -0.5 becomes -1 and ties token 0, the first index.
        #expect(try DraftModelDrafter(model: FixedRowsModel([-1, -0.5]), repetitionPenalty: 2).draft(context: [1], count: 2) == [0, 1])
        var sampler = Sampler(parameters: SamplingParameters(repetitionPenalty: 1.2))
        var context = [0, 1]
        for _ in 0..<3 { context.append(sampler.next(logits: logits, context: context)) }
        #expect(Array(context.dropFirst(2)) == [2, 3, 1])
    }

    /// The target drafting for itself under the sampling's penalty: every draft is accepted; without
    /// the penalty some are not. The tokens are the same either way.
    @Test func penaltyAwareDraftsOfTheTargetItselfAreAllAccepted() throws {
        let prompt = [1, 4, 9, 2, 4, 9, 2, 7, 4, 9]
        // A strong penalty: this model's favourite token leads the others by 1 to 5.
        let options = GenerationOptions(maxNewTokens: 60, sampling: SamplingParameters(repetitionPenalty: 2))
        let aware = try Generator(model: ContextHashModel(), drafter: DraftModelDrafter(
            model: ContextHashModel(verifyLength: 0), repetitionPenalty: 2)).generate(promptTokens: prompt, options: options)
        let blind = try Generator(model: ContextHashModel(), drafter: DraftModelDrafter(
            model: ContextHashModel(verifyLength: 0))).generate(promptTokens: prompt, options: options)
        #expect(aware.tokens == blind.tokens)
        #expect(aware.stats.draftsAccepted == aware.stats.draftsProposed)
        #expect(blind.stats.draftsAccepted < blind.stats.draftsProposed)
    }
}

/// Every logits row is the same, whatever was fed.
final class FixedRowsModel: LanguageModel {
    let contextLength = 32
    let prefillLength = 4
    let vocabularySize: Int
    private let logits: [Float]

    init(_ logits: [Float]) {
        self.logits = logits
        vocabularySize = logits.count
    }

    func reset() throws {}
    func prefill(tokens: [Int32], position: Int) throws -> LogitRows { LogitRows(tokens.map { _ in logits }) }
    func decode(token: Int32, position: Int) throws -> [Float] { logits }
}
