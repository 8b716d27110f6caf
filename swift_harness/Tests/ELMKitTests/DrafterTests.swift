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
        // Feeds positions 0-2, then decodes its own drafts at 3 and 4 (the last draft is not fed).
        #expect(try drafter.draft(context: [5, 6, 7], count: 3) == [6, 9, 12])
        #expect(model.calls == [.decode(token: 5, position: 0), .decode(token: 6, position: 1), .decode(token: 7, position: 2),
                                .decode(token: 6, position: 3), .decode(token: 9, position: 4)])
        // The target took 6 and then 4: only the tokens after the common prefix [5, 6, 7, 6] are fed.
        #expect(try drafter.draft(context: [5, 6, 7, 6, 4], count: 2) == [12, 15])  // predictions after positions 4 and 5
        #expect(Array(model.calls.suffix(2)) == [.decode(token: 4, position: 4), .decode(token: 12, position: 5)])
        // The same context again: only its newest token is fed again (for its logits).
        #expect(try drafter.draft(context: [5, 6, 7, 6, 4], count: 1) == [12])
        #expect(model.calls.last == .decode(token: 4, position: 4) && drafter.modelCalls == 8)
        #expect(drafter.name == "draft model")
    }

    @Test func draftModelStopsAtItsContextEnd() throws {
        let model = ScriptedLanguageModel(contextLength: 6, prefillLength: 4) { _ in 1 }
        let drafter = DraftModelDrafter(model: model)
        #expect(try drafter.draft(context: [2, 3, 4, 5], count: 4) == [1, 1, 1])  // drafts at positions 4, 5, 6
        #expect(model.calls.compactMap { if case .decode(_, let p) = $0 { return p } else { return nil } } == [0, 1, 2, 3, 4, 5])
        #expect(try drafter.draft(context: Array(0..<7), count: 2) == [])  // longer than its context
    }
}
