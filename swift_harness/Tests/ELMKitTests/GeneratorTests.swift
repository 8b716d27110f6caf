import Testing
@testable import ELMKit

@Suite struct GeneratorTests {
    let prompt = Array(1...10)

    @Test func prefillIsChunkedAtChunkStartPositionsThenDecodesAtSequenceIndex() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 4) { 20 + $0 % 5 }
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 3))
        #expect(model.calls == [
            .reset,
            .prefill(tokens: [1, 2, 3, 4], position: 0),
            .prefill(tokens: [5, 6, 7, 8], position: 4),
            .prefill(tokens: [9, 10], position: 8),  // short last chunk: the model pads it
            .decode(token: 24, position: 10),  // predicted from the last real prompt row (position 9)
            .decode(token: 20, position: 11),
        ])
        #expect(result.tokens == [24, 20, 21])
        #expect(result.stopReason == .maxTokens)
        #expect(result.stats.promptTokens == 10 && result.stats.generatedTokens == 3 && result.stats.decodeSteps == 2)
    }

    @Test func stopsOnEndOfSequenceAndKeepsIt() throws {
        let eos = 2
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 8) { $0 >= 12 ? eos : 7 }
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 50, eosTokenId: eos))
        #expect(result.tokens == [7, 7, 7, eos])
        #expect(result.stopReason == .endOfSequence)
        #expect(model.calls.last == .decode(token: 7, position: 12))  // EOS itself is never fed
    }

    @Test func stopTokensStopLikeEndOfSequence() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 8) { $0 == 11 ? 9 : $0 == 13 ? 2 : 7 }
        let both = GenerationOptions(maxNewTokens: 50, eosTokenId: 2, stopTokenIds: [9])
        #expect(both.allStopTokenIds == [2, 9])
        let result = try Generator(model: model).generate(promptTokens: prompt, options: both)
        #expect(result.tokens == [7, 7, 9] && result.stopReason == .endOfSequence)
        let eosOnly = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 50, eosTokenId: 2))
        #expect(eosOnly.tokens == [7, 7, 9, 7, 2] && eosOnly.stopReason == .endOfSequence)
    }

    @Test func stopsOnMaxTokens() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 8) { _ in 5 }
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 1))
        #expect(result.tokens == [5])
        #expect(result.stopReason == .maxTokens)
        #expect(!model.calls.contains { if case .decode = $0 { return true } else { return false } })
    }

    @Test func stopsWhenTheSequenceFillsTheContext() throws {
        let model = ScriptedLanguageModel(contextLength: 16, prefillLength: 8) { _ in 5 }
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 100))
        #expect(result.tokens.count == 6)  // 10 prompt + 6 new = 16 = context length
        #expect(result.stopReason == .contextFull)
        let positions = model.calls.compactMap { if case .decode(_, let p) = $0 { return p } else { return nil } }
        #expect(positions == [10, 11, 12, 13, 14])
    }

    @Test func promptTailThatCannotBePaddedInsideTheContextIsFedTokenByToken() throws {
        let model = ScriptedLanguageModel(contextLength: 10, prefillLength: 4) { _ in 5 }
        let result = try Generator(model: model).generate(promptTokens: Array(1...9), options: GenerationOptions(maxNewTokens: 5))
        #expect(Array(model.calls.prefix(4)) == [
            .reset,
            .prefill(tokens: [1, 2, 3, 4], position: 0),
            .prefill(tokens: [5, 6, 7, 8], position: 4),
            .decode(token: 9, position: 8),  // a padded chunk at 8 would write positions 8..11 > 10
        ])
        #expect(result.stopReason == .contextFull && result.tokens == [5])
    }

    @Test func rejectsPromptsThatLeaveNoRoom() {
        let model = ScriptedLanguageModel(contextLength: 10, prefillLength: 4) { _ in 5 }
        #expect {
            try Generator(model: model).generate(promptTokens: Array(1...10), options: GenerationOptions(maxNewTokens: 5))
        } throws: { error in
            "\(error)".contains("10 tokens") && "\(error)".contains("context")
        }
        #expect(throws: GenerationError.self) {
            try Generator(model: model).generate(promptTokens: [], options: GenerationOptions(maxNewTokens: 5))
        }
    }

    @Test func logitsBeyondTheVocabularyAreIgnored() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 4, rowPadding: 8) { _ in 3 }
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 2))
        #expect(result.tokens == [3, 3])
    }

    @Test func callbackCanStopGeneration() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 4) { _ in 3 }
        var seen: [Int] = []
        let result = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 20)) { token in
            seen.append(token.index)
            return token.index < 2
        }
        #expect(seen == [0, 1, 2])
        #expect(result.stopReason == .cancelled)
    }

    @Test func statsReportRatesAndLoadTime() throws {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 4) { _ in 3 }
        let stats = try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 4), loadSeconds: 1.5).stats
        #expect(stats.loadSeconds == 1.5)
        #expect(stats.timeToFirstTokenSeconds >= stats.prefillSeconds)
        #expect(stats.prefillTokensPerSecond > 0 && stats.decodeTokensPerSecond > 0)
        #expect(stats.description.contains("load 1.50 s") && stats.description.contains("decode"))
    }

    @Test func invalidSamplingIsRejectedBeforeRunning() {
        let model = ScriptedLanguageModel(contextLength: 64, prefillLength: 4) { _ in 3 }
        #expect(throws: GenerationError.self) {
            try Generator(model: model).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 4, sampling: SamplingParameters(topP: 2)))
        }
        #expect(model.calls.isEmpty)
    }
}
