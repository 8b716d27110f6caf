import Foundation
import Testing
@testable import ELMKit
@testable import elm_run

/// elm-run's hand-written argument parsing (its Core ML part cannot run on Linux).
@Suite struct RunOptionsTests {
    func parse(_ arguments: [String]) throws -> RunOptions? { try RunOptions.parse(arguments) }

    func error(_ arguments: [String]) -> String {
        do {
            _ = try parse(arguments)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func defaultsAndAllOptions() throws {
        let basic = try #require(try parse(["--model", "out/m", "--prompt", "Hi"]))
        #expect(basic.modelFolder == "out/m" && basic.prompt == "Hi" && basic.maxTokens == 128)
        #expect(basic.computeUnits == .cpuAndNeuralEngine && basic.format == nil)
        #expect(basic.sampling == SamplingParameters(repetitionPenalty: 1.2))

        let full = try #require(try parse([
            "--model", "m", "--prompt", "Once upon", "--max-tokens", "32", "--compute-units", "cpuOnly",
            "--temperature", "0.7", "--top-k=40", "--top-p", "0.9", "--repetition-penalty", "1", "--seed", "99",
        ]))
        #expect(full.maxTokens == 32 && full.computeUnits == .cpuOnly)
        #expect(full.sampling == SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1, seed: 99))
    }

    @Test func helpAndEmptyPrompt() throws {
        #expect(try parse(["--help"]) == nil)
        #expect(try parse(["--model", "m", "-h"]) == nil)
        #expect(try parse(["--model", "m", "--prompt", ""])?.prompt == "")
        #expect(RunOptions.usage.contains("--compute-units") && RunOptions.usage.contains("--format"))
    }

    @Test func formatForcesCoreMLOrCoreAI() throws {
        #expect(try parse(["--model", "m", "--prompt", "x", "--format", "coreai"])?.format == .coreAI)
        #expect(try parse(["--model", "m", "--prompt", "x", "--format=coreml"])?.format == .coreML)
        let wrong = error(["--model", "m", "--prompt", "x", "--format", "CoreML"])
        #expect(wrong.contains("--format must be one of coreml, coreai, got 'CoreML'"), "\(wrong)")
        #expect(error(["--model", "m", "--prompt", "x", "--format"]).contains("--format needs a value"))
    }

    @Test func badCommandLinesAreExplained() {
        #expect(error(["--model", "m", "--prompt", "x", "--temp", "1"]).contains("unknown option '--temp'"))
        #expect(error(["--model", "m", "--prompt"]).contains("--prompt needs a value"))
        #expect(error(["--model", "m", "--prompt", "x", "--max-tokens", "many"]).contains("--max-tokens needs a number, got 'many'"))
        #expect(error(["--model", "m", "--prompt", "x", "--max-tokens", "0"]).contains("at least 1"))
        #expect(error(["--model", "m", "--prompt", "x", "--compute-units", "ane"]).contains("cpuAndNeuralEngine"))
        #expect(error(["--prompt", "x"]).contains("missing the export folder: elm-run DIR (or --model DIR)"))
        #expect(error(["--model", "m"]).contains("missing --prompt"))
        #expect(error(["--model", "m", "--model", "n", "--prompt", "x"]).contains("given twice"))
        #expect(error(["--model", "m", "--prompt", "x", "stray"]).contains("unexpected argument 'stray'"))
        #expect(error(["--model", "m", "--prompt", "x", "--top-p", "1.5"]).contains("top-p"))
        #expect(error(["--model", "m", "--prompt", "x", "--temperature", "nan"]).contains("temperature"))
    }

    @Test func theFolderMayBePositional() throws {
        #expect(try parse(["out/m", "--prompt", "Hi"])?.modelFolder == "out/m")
        #expect(try parse(["--prompt", "Hi", "out/m"])?.modelFolder == "out/m")
        #expect(error(["a", "b", "--prompt", "x"]).contains("unexpected argument 'b'"))
        #expect(error(["a", "--model", "b", "--prompt", "x"]).contains("the export folder is given twice ('a' and --model)"))
        #expect(RunOptions.usage.contains("elm-run DIR --prompt TEXT"))
    }

    @Test func chatReadsTurnsInsteadOfAPrompt() throws {
        let chat = try #require(try parse(["m", "--chat"]))
        #expect(chat.chat && chat.prompt.isEmpty)
        #expect(try parse(["m", "--prompt", "x"])?.chat == false)
        #expect(error(["m", "--chat", "--prompt", "x"]).contains("give --prompt TEXT or --chat, not both"))
        #expect(error(["m", "--chat=yes"]).contains("--chat takes no value"))
        #expect(error(["m"]).contains("missing --prompt TEXT (or --chat"))
    }

    @Test func minPAndStopTokens() throws {
        let options = try #require(try parse(["m", "--prompt", "x", "--min-p", "0.05", "--stop-token", "32", "--stop-token=7"]))
        #expect(options.sampling.minP == 0.05 && options.stopTokens == [32, 7])
        #expect(error(["m", "--prompt", "x", "--min-p", "1"]).contains("min-p must be in [0, 1)"))
        #expect(error(["m", "--prompt", "x", "--stop-token", "-1"]).contains("at least 0"))
        #expect(RunOptions.usage.contains("--min-p") && RunOptions.usage.contains("--stop-token"))
    }

    /// The CLI's defaults, then export.json's `generation.defaults`, then the flags.
    @Test func exportDefaultsSitBetweenTheCLIsAndTheFlags() throws {
        let defaults = GenerationDefaults(temperature: 0.6, topP: 0.9, minP: 0.05, maxNewTokens: 300, seed: 5)
        let plain = try #require(try parse(["m", "--prompt", "x"]))
        #expect(plain.sampling(defaults: defaults) == SamplingParameters(temperature: 0.6, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2, seed: 5))
        #expect(plain.maxTokens(defaults: defaults) == 300 && plain.maxTokens(defaults: nil) == 128)
        let flags = try #require(try parse(["m", "--prompt", "x", "--temperature", "0", "--seed", "9", "--max-tokens", "20"]))
        #expect(flags.sampling(defaults: defaults) == SamplingParameters(temperature: 0, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2, seed: 9))
        #expect(flags.maxTokens(defaults: defaults) == 20)
        #expect(flags.sampling(defaults: nil) == SamplingParameters(repetitionPenalty: 1.2, seed: 9))
    }

    @Test func speculateChoosesHowTokensAreDrafted() throws {
        #expect(try parse(["m", "--prompt", "x"])?.speculation == nil)
        #expect(try parse(["m", "--prompt", "x", "--speculate", "none"])?.speculation == Speculation.none)
        let draft = try #require(try parse(["m", "--prompt", "x", "--draft", "small"]))
        #expect(draft.draftFolder == "small" && draft.speculation == nil)
        #expect(try parse(["m", "--prompt", "x", "--draft", "s", "--speculate", "draft"])?.speculation == .draft)
        #expect(error(["m", "--prompt", "x", "--speculate", "always"]).contains("--speculate must be one of none, lookup, draft"))
        #expect(error(["m", "--prompt", "x", "--speculate", "draft"]).contains("--speculate draft needs --draft DIR"))
        #expect(error(["m", "--prompt", "x", "--speculate", "lookup", "--draft", "s"]).contains("drop --speculate lookup or --draft"))

        // What runs: asked for, else draft with --draft, else lookup when the export can verify.
        #expect(try Speculation.resolve(nil, draftFolder: nil, exportHasVerify: true) == .lookup)
        #expect(try Speculation.resolve(nil, draftFolder: nil, exportHasVerify: false) == Speculation.none)
        #expect(try Speculation.resolve(nil, draftFolder: "s", exportHasVerify: true) == .draft)
        #expect(try Speculation.resolve(Speculation.none, draftFolder: nil, exportHasVerify: true) == Speculation.none)
        #expect(throws: UsageError.self) { try Speculation.resolve(.lookup, draftFolder: nil, exportHasVerify: false) }
    }

    @Test func adapterNamesTheLoRAAdapterToRun() throws {
        #expect(try parse(["m", "--prompt", "x"])?.adapter == nil)
        #expect(try parse(["m", "--prompt", "x", "--adapter", "psalms"])?.adapter == "psalms")
        #expect(try parse(["m", "--chat", "--adapter=proverbs"])?.adapter == "proverbs")
        let withDraft = try #require(try parse(["m", "--prompt", "x", "--adapter", "psalms", "--draft", "small"]))
        #expect(withDraft.adapter == "psalms" && withDraft.draftFolder == "small")
        #expect(error(["m", "--prompt", "x", "--adapter"]).contains("--adapter needs a value"))
        #expect(error(["m", "--prompt", "x", "--adapter", ""]).contains("--adapter needs an adapter name"))
        #expect(error(["m", "--prompt", "x", "--adapter", "a", "--adapter", "b"]).contains("option --adapter is given twice"))
        #expect(RunOptions.usage.contains("--adapter NAME"))
    }

    @Test func aDraftMustShareTheTargetsVocabulary() throws {
        func manifest(vocabulary: Int) throws -> ExportManifest {
            try ExportManifest(data: Data(ManifestFixtures.edited(ManifestFixtures.split) { $0["vocab_size"] = vocabulary }.utf8))
        }
        func tokenizer(_ tokens: [String]) throws -> Tokenizer {
            let vocab = tokens.enumerated().map { "\"\($0.element)\": \($0.offset)" }.joined(separator: ", ")
            return try Tokenizer(data: Data(#"{"model": {"type": "BPE", "unk_token": "<unk>", "merges": [], "vocab": {\#(vocab)}}}"#.utf8))
        }
        let target = try manifest(vocabulary: 4096)
        let size = try #require(Speculation.vocabularyProblem(target: target, draft: try manifest(vocabulary: 4000), targetTokenizer: nil, draftTokenizer: nil))
        #expect(size.contains("4000 tokens, the target has 4096"))
        let same = try tokenizer(["<unk>", "<s>", "a", "b"])
        #expect(Speculation.vocabularyProblem(target: target, draft: target, targetTokenizer: same, draftTokenizer: try tokenizer(["<unk>", "<s>", "a", "b"])) == nil)
        let other = try #require(Speculation.vocabularyProblem(target: target, draft: target, targetTokenizer: same,
                                                               draftTokenizer: try tokenizer(["<unk>", "<s>", "b", "a"])))
        #expect(other.contains("token 2 is 'b' there, 'a' here") && !other.contains("\n"))
    }
}
