import Testing
@testable import ELMKit

/// The Generator driving recorded reference-model logits must give Python's greedy tokens and text.
@Suite struct ReplayTests {
    let golden: ReplayGolden
    let tokenizer: Tokenizer

    init() throws {
        golden = try Fixtures.decode(ReplayGolden.self, from: "replay_golden.json")
        tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
    }

    @Test func promptEncodesAsInPython() {
        #expect(tokenizer.encode(golden.prompt) == golden.prompt_ids)
    }

    @Test func greedyGenerationReproducesPython() throws {
        let model = ReplayLanguageModel(golden)
        let generator = Generator(model: model, tokenizer: tokenizer)
        var streamed: [Int] = []
        var streamedText = ""
        let result = try generator.generate(
            promptTokens: tokenizer.encode(golden.prompt),
            options: GenerationOptions(maxNewTokens: golden.max_new_tokens, sampling: .greedy, eosTokenId: golden.eos_token_id)
        ) { token in
            streamed.append(token.id)
            streamedText += token.text
            return true
        }
        #expect(result.tokens == golden.expected_tokens)
        #expect(streamed == golden.expected_tokens)
        #expect(sameScalars(result.text, golden.expected_text), "\"\(escaped(result.text))\" vs \"\(escaped(golden.expected_text))\"")
        #expect(sameScalars(streamedText, golden.expected_text), "streamed \"\(escaped(streamedText))\"")
        #expect(model.allCallsReplayed, "only \(model.nextCall) of \(golden.calls.count) recorded calls were made")
        #expect(golden.prompt_ids.count > golden.prefill_length, "the replay should span several prefill chunks")
    }

    @Test func streamingAPIReproducesPython() async throws {
        let generator = Generator(model: ReplayLanguageModel(golden), tokenizer: tokenizer)
        var tokens: [Int] = []
        var finished: GenerationResult?
        let options = GenerationOptions(maxNewTokens: golden.max_new_tokens, eosTokenId: golden.eos_token_id)
        for try await event in generator.stream(promptTokens: golden.prompt_ids, options: options) {
            switch event {
            case .token(let token): tokens.append(token.id)
            case .finished(let result): finished = result
            }
        }
        #expect(tokens == golden.expected_tokens)
        #expect(finished?.tokens == golden.expected_tokens)
    }
}
