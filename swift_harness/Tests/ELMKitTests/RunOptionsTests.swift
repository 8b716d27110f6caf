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
        #expect(error(["--prompt", "x"]).contains("missing --model"))
        #expect(error(["--model", "m"]).contains("missing --prompt"))
        #expect(error(["--model", "m", "--model", "n", "--prompt", "x"]).contains("given twice"))
        #expect(error(["--model", "m", "--prompt", "x", "stray"]).contains("unexpected argument 'stray'"))
        #expect(error(["--model", "m", "--prompt", "x", "--top-p", "1.5"]).contains("top-p"))
        #expect(error(["--model", "m", "--prompt", "x", "--temperature", "nan"]).contains("temperature"))
    }
}
