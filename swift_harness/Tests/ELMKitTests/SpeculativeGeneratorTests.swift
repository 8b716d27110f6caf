import Testing
@testable import ELMKit

/// Speculative decoding never changes the output: the sampler is called once per emitted token
/// with the logits and context plain decoding would give it.
@Suite struct SpeculativeGeneratorTests {
    let prompt = [1, 4, 9, 2, 4, 9, 2, 7, 4, 9]

    static let samplings = [
        SamplingParameters(temperature: 0.8, topP: 0.9, repetitionPenalty: 1.2, seed: 1),
        SamplingParameters(temperature: 1.0, minP: 0.1, repetitionPenalty: 1.2, seed: 2),
        SamplingParameters(temperature: 0.7, topK: 6, topP: 0.95, minP: 0.05, repetitionPenalty: 1.2, seed: 3),
        SamplingParameters(temperature: 0, repetitionPenalty: 1.2),
    ]

    @Test(arguments: samplings)
    func seededSamplingGivesThePlainTokens(_ sampling: SamplingParameters) throws {
        let options = GenerationOptions(maxNewTokens: 60, sampling: sampling)
        let plain = try Generator(model: ContextHashModel()).generate(promptTokens: prompt, options: options)
        let drafters: [() -> any Drafter] = [
            { PromptLookupDrafter(maxNgram: 3) },
            { DraftModelDrafter(model: ContextHashModel(verifyLength: 0, offset: 1)) },  // often wrong
            { DraftModelDrafter(model: ContextHashModel(verifyLength: 0)) },  // the target's greedy choice
            { DraftModelDrafter(model: ContextHashModel(verifyLength: 0, offset: 1), repetitionPenalty: 1.3) },
            { DraftModelDrafter(model: ContextHashModel(prefillLength: 4, verifyLength: 0), repetitionPenalty: sampling.repetitionPenalty) },
        ]
        for makeDrafter in drafters {
            let model = ContextHashModel()
            let result = try Generator(model: model, drafter: makeDrafter()).generate(promptTokens: prompt, options: options)
            #expect(result.tokens == plain.tokens, "\(result.stats.drafter ?? "")")
            #expect(result.stopReason == plain.stopReason)
            #expect(result.stats.calls.verify > 0 && result.stats.draftsProposed > 0)
            #expect(result.stats.calls.verify + result.stats.decodeSteps < plain.stats.decodeSteps + 1)
        }
    }

    /// Over these runs both outcomes occur: drafts accepted and drafts rejected.
    @Test func acceptsAndRejects() throws {
        let options = GenerationOptions(maxNewTokens: 60, sampling: Self.samplings[0])
        let result = try Generator(model: ContextHashModel(), drafter: PromptLookupDrafter())
            .generate(promptTokens: prompt, options: options)
        #expect(result.stats.draftsAccepted > 0 && result.stats.draftsAccepted < result.stats.draftsProposed)
        #expect(result.stats.acceptanceRate > 0 && result.stats.acceptanceRate < 1)
        #expect(result.stats.description.contains("prompt lookup") && result.stats.description.contains("model calls/token"))
    }

    @Test func verifyNearTheContextEndFallsBackToDecode() throws {
        let options = GenerationOptions(maxNewTokens: 100, sampling: .greedy)
        let plain = try Generator(model: ContextHashModel(contextLength: 24)).generate(promptTokens: prompt, options: options)
        let model = ContextHashModel(contextLength: 24, verifyLength: 4)
        let result = try Generator(model: model, drafter: DraftModelDrafter(model: ContextHashModel(verifyLength: 0)))
            .generate(promptTokens: prompt, options: options)
        #expect(result.tokens == plain.tokens && result.tokens.count == 14 && result.stopReason == .contextFull)
        let verifies = model.calls.compactMap { if case .verify(_, let p) = $0 { return p } else { return nil } }
        let decodes = model.calls.compactMap { if case .decode(_, let p) = $0 { return p } else { return nil } }
        #expect(!verifies.isEmpty && verifies.allSatisfy { $0 + 4 <= 24 })
        #expect(decodes.contains { $0 > 20 })  // the padded call would not fit: plain decodes instead
    }

    @Test func aStopTokenInsideAnAcceptedRunStopsAtOnce() throws {
        let stop = 2
        let script = { (p: Int) in p == 14 ? stop : 7 }  // the token at position 15 is the stop token
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 16, verifyLength: 4, script: script)
        var streamed: [Int] = []
        let result = try Generator(model: model, drafter: ScriptDrafter(script: script)).generate(
            promptTokens: prompt, options: GenerationOptions(maxNewTokens: 50, stopTokenIds: [stop])) { token in
            streamed.append(token.id)
            return true
        }
        #expect(result.tokens == [7, 7, 7, 7, 7, stop] && streamed == result.tokens)
        #expect(result.stopReason == .endOfSequence)
        #expect(model.calls.last == .verify(tokens: [7, Int32(stop), 7, 7], position: 14))
        // The stop token was the first row's token: the rest of that verify was not read.
        #expect(result.stats.draftsAccepted == 4 && result.stats.draftsProposed == 6)
    }

    @Test func maxTokensInsideAnAcceptedRunStopsAtOnce() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 16, verifyLength: 5) { _ in 7 }
        let result = try Generator(model: model, drafter: ScriptDrafter { _ in 7 })
            .generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 3))
        #expect(result.tokens == [7, 7, 7] && result.stopReason == .maxTokens)
        #expect(model.calls.filter { if case .verify = $0 { return true } else { return false } }.count == 1)
    }

    @Test func noDraftMeansAPlainDecode() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 16, verifyLength: 4) { _ in 5 }
        let result = try Generator(model: model, drafter: PromptLookupDrafter())
            .generate(promptTokens: [1, 2, 3], options: GenerationOptions(maxNewTokens: 2))
        // [1, 2, 3, 5]: no earlier 5, no earlier [3, 5] or [2, 3, 5]: nothing to verify.
        #expect(model.calls == [.reset, .prefill(tokens: [1, 2, 3], position: 0), .decode(token: 5, position: 3)])
        #expect(result.tokens == [5, 5] && result.stats.calls.verify == 0 && result.stats.decodeSteps == 1)
    }

    @Test func aModelWithoutVerifyIgnoresTheDrafter() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 16) { _ in 5 }
        let generator = Generator(model: model, drafter: ScriptDrafter { _ in 5 })
        #expect(!generator.speculates)
        let result = try generator.generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 4))
        #expect(result.tokens == [5, 5, 5, 5] && result.stats.drafter == nil && result.stats.decodeSteps == 3)
        #expect(!result.stats.description.contains("drafts"))
    }
}
