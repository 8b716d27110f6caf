import Foundation
import Testing
@testable import ELMKit

/// export.json's `generation` section: chat template, sampling defaults, stop tokens.
@Suite struct GenerationConfigTests {
    static var section: [String: Any] { [
        "chat_template": ChatTemplateTests.openELM,
        "chat_template_source": "apple/OpenELM-270M-Instruct tokenizer_config.json",
        "defaults": ["temperature": 0.6, "top_k": 50, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.2,
                     "max_new_tokens": 256, "seed": 7],
        "sources": ["temperature": "generation_config.json", "repetition_penalty": "model card"],
        "stop_token_ids": [2, 32],
        "bos_token": "<s>",
        "eos_token": "</s>",
    ] }

    func manifest(_ edit: (inout [String: Any]) -> Void) throws -> ExportManifest {
        try ExportManifest(data: Data(ManifestFixtures.edited(ManifestFixtures.split) { edit(&$0) }.utf8))
    }

    @Test func readsEveryField() throws {
        let generation = try #require(try manifest { $0["generation"] = Self.section }.generation)
        #expect(generation.chatTemplate == ChatTemplateTests.openELM)
        #expect(generation.chatTemplateSource?.hasPrefix("apple/") == true)
        #expect(generation.defaults == GenerationDefaults(temperature: 0.6, topK: 50, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2,
                                                          maxNewTokens: 256, seed: 7))
        #expect(generation.sources == ["temperature": "generation_config.json", "repetition_penalty": "model card"])
        #expect(generation.stopTokenIds == [2, 32] && generation.bosToken == "<s>" && generation.eosToken == "</s>")
        let sampling = generation.defaults.applied(to: SamplingParameters(topK: 3, seed: 1))
        #expect(sampling == SamplingParameters(temperature: 0.6, topK: 50, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2, seed: 7))
    }

    @Test func everyFieldIsOptional() throws {
        #expect(try manifest { _ in }.generation == nil)
        #expect(try manifest { $0["generation"] = NSNull() }.generation == nil)
        let empty = try #require(try manifest { $0["generation"] = [String: Any]() }.generation)
        #expect(empty == GenerationConfig())
        let base = try #require(try manifest { $0["generation"] = ["chat_template": NSNull(), "defaults": ["top_p": 0.5]] }.generation)
        #expect(base.chatTemplate == nil && base.defaults.applied(to: .greedy) == SamplingParameters(topP: 0.5))
    }

    @Test func badValuesAreNamed() {
        func message(_ section: [String: Any]) -> String {
            ManifestFixtures.message(ManifestFixtures.edited(ManifestFixtures.split) { $0["generation"] = section })
        }
        #expect(message(["stop_token_ids": [5000]]).contains("stop_token_ids holds 5000"))
        #expect(message(["defaults": ["min_p": 1.5]]).contains("min-p"))
        #expect(message(["defaults": ["max_new_tokens": 0]]).contains("max_new_tokens"))
        #expect(message(["defaults": ["seed": -1]]).contains("seed"))
        #expect(message(["chat_template": 3]).contains("generation.chat_template"))
    }
}
