import Testing
@testable import ELMKit

/// Speculative decoding against rows Python recorded from the reference model (the target) and a
/// draft model: plain and speculative greedy generation must both give Python's plain tokens, and
/// the speculative run must make the calls Python's did (same drafts, same acceptances).
@Suite struct SpeculativeReplayTests {
    let golden: SpeculativeGolden

    init() throws {
        golden = try Fixtures.decode(SpeculativeGolden.self, from: "golden_speculative.json")
    }

    /// The highest id no case uses: what poison rows point at.
    var poison: Int {
        let used = Set(golden.cases.flatMap { $0.prompt + $0.plain_tokens + $0.speculative_tokens })
        return (0..<golden.vocab_size).last { !used.contains($0) }!
    }

    func target() -> ContextReplayModel { ContextReplayModel(golden: golden, rows: golden.target_rows, poison: poison) }

    func options(_ golden: SpeculativeGolden.Case) -> GenerationOptions {
        GenerationOptions(maxNewTokens: golden.max_new_tokens, sampling: SamplingParameters(repetitionPenalty: golden.repetition_penalty))
    }

    @Test func theFixtureIsWhatTheReplayAssumes() {
        #expect(golden.prefill_gives_logits && golden.verify_length >= 2)
        #expect(Set(golden.cases.map(\.drafter)) == ["prompt_lookup", "draft_model"])
        // Some draft model cases draft under the repetition penalty; every one feeds its prompt by prefill.
        let drafted = golden.cases.filter { $0.drafter == "draft_model" }
        #expect(Set(drafted.map(\.repetition_penalty)) == [1, 1.2])
        #expect(drafted.allSatisfy { $0.prompt.count <= 2 || $0.calls.draft_prefill >= 1 })
        for golden in golden.cases { #expect(golden.speculative_tokens == golden.plain_tokens, "\(golden.name)") }
    }

    @Test func plainGreedyGivesPythonsTokens() throws {
        for golden in golden.cases {
            let model = target()
            let result = try Generator(model: model).generate(promptTokens: golden.prompt, options: options(golden))
            #expect(result.tokens == golden.plain_tokens, "\(golden.name)")
            #expect(model.unknownContexts.isEmpty, "\(golden.name): \(model.unknownContexts.prefix(2))")
            #expect(model.verifyCalls == 0)
        }
    }

    @Test func speculativeGreedyGivesThePlainTokensWithPythonsCalls() throws {
        for golden in golden.cases {
            let model = target()
            let draftModel = ContextReplayModel(golden: self.golden, rows: self.golden.draft_rows, poison: poison, verifies: false)
            let draftModelDrafter = DraftModelDrafter(model: draftModel, repetitionPenalty: golden.repetition_penalty)
            let drafter: any Drafter = golden.drafter == "draft_model" ? draftModelDrafter : PromptLookupDrafter(maxNgram: 3)
            let generator = Generator(model: model, drafter: drafter)
            #expect(generator.speculates)
            let result = try generator.generate(promptTokens: golden.prompt, options: options(golden))
            #expect(result.tokens == golden.plain_tokens, "\(golden.name)")
            let stats = result.stats
            let calls = SpeculativeGolden.Calls(decode: stats.decodeSteps, verify: stats.calls.verify,
                                                accepted: stats.draftsAccepted, proposed: stats.draftsProposed,
                                                draft_prefill: draftModel.prefillCalls, draft_decode: draftModel.decodeCalls)
            #expect(calls == golden.calls, "\(golden.name)")
            #expect(model.unknownContexts.isEmpty, "\(golden.name): \(model.unknownContexts.prefix(2))")
            #expect(draftModel.unknownContexts.isEmpty, "\(golden.name): draft \(draftModel.unknownContexts.prefix(2))")
            #expect(stats.drafter == drafter.name && stats.calls.draft == draftModel.prefillCalls + draftModel.decodeCalls)
            if golden.drafter == "draft_model" {
                #expect(draftModelDrafter.modelCallCounts == ModelCallCounts(prefill: draftModel.prefillCalls, decode: draftModel.decodeCalls))
            }
        }
    }
}
