import Foundation
import Testing
@testable import ELMKit

@Suite struct ChatPromptTests {
    func manifest(generation: [String: Any]?) throws -> ExportManifest {
        try ExportManifest(data: Data(ManifestFixtures.edited(ManifestFixtures.split) { $0["generation"] = generation }.utf8))
    }

    @Test func theExportsTemplateWithItsTokenStrings() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
        #expect(try ChatPrompt.forExport(try manifest(generation: nil), tokenizer: tokenizer) == nil)
        #expect(try ChatPrompt.forExport(try manifest(generation: ["stop_token_ids": [2]]), tokenizer: tokenizer) == nil)

        let given = try #require(try ChatPrompt.forExport(
            try manifest(generation: ["chat_template": ChatTemplateTests.openELM, "bos_token": "<B>", "eos_token": "<E>"]), tokenizer: tokenizer))
        #expect(given.bosToken == "<B>" && given.eosToken == "<E>")
        #expect(try given.text(for: [turn("user", "hi")]) == "<|user|>\nhi<E>\n<|assistant|>\n")
        // Without the strings in export.json: the tokenizer's BOS and EOS tokens.
        let fallback = try #require(try ChatPrompt.forExport(try manifest(generation: ["chat_template": ChatTemplateTests.openELM]),
                                                             tokenizer: tokenizer))
        #expect(fallback.bosToken == "<s>" && fallback.eosToken == "</s>")
        // A template the interpreter cannot run fails here, not at the first message.
        #expect(throws: ChatTemplateError.self) {
            try ChatPrompt.forExport(try manifest(generation: ["chat_template": "{% macro x() %}{% endmacro %}"]), tokenizer: tokenizer)
        }
    }

    @Test func tokensStartWithBOSAndDropTheOldestExchangeToFit() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
        let chat = ChatPrompt(template: try ChatTemplate(source: ChatTemplateTests.openELM), bosToken: "<s>", eosToken: "</s>")
        let turns = [turn("system", "Be brief."), turn("user", "What is the capital of France?"), turn("assistant", "Paris."),
                     turn("user", "And of Italy?")]
        let all = try chat.tokens(for: turns, tokenizer: tokenizer, budget: 1000)
        #expect(all == tokenizer.encode(try chat.text(for: turns), addBOS: true) && all.first == tokenizer.bosTokenId)
        let kept = [turns[0], turns[3]]
        let short = try chat.tokens(for: turns, tokenizer: tokenizer, budget: all.count - 1)
        #expect(short == tokenizer.encode(try chat.text(for: kept), addBOS: true))
        let bare = ChatPrompt(template: chat.template, bosToken: "<s>", eosToken: "</s>", addBOS: false)
        #expect(try bare.tokens(for: turns, tokenizer: tokenizer, budget: 1000) == Array(all.dropFirst()))
        // The system turn and the newest one stay, even over budget.
        #expect(try chat.tokens(for: turns, tokenizer: tokenizer, budget: 1) == short)
    }
}
