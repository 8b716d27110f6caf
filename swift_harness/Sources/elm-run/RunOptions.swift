import ELMKit

/// A command-line mistake; printed with a pointer to --help, exit code 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What `elm-run` was asked to do. Parsed by hand: the package has no dependencies.
struct RunOptions: Equatable {
    var modelFolder = ""
    var prompt = ""
    /// Talk to an instruct model: user lines from stdin, rendered with the export's chat template.
    var chat = false
    /// --max-tokens, nil when not given (export.json's default, else 128).
    var maxTokensFlag: Int?
    var computeUnits = ComputeUnits.cpuAndNeuralEngine
    /// nil: Core AI when the folder has it and the OS runs it, else Core ML.
    var format: ExportFormat?
    /// The sampling flags given; the rest come from export.json's defaults or the CLI's own.
    var samplingFlags = SamplingFlags()
    /// --stop-token, in the order given.
    var stopTokens: [Int] = []
    /// nil: lookup when the export has a verify function (draft with --draft), else none.
    var speculation: Speculation?
    /// --draft: a smaller export of the same vocabulary that drafts for the target.
    var draftFolder: String?
    /// --adapter: the LoRA adapter (export.json's `adapters`) the target runs with; nil: the base model.
    var adapter: String?

    /// The CLI follows OpenELM's model card (repetition penalty 1.2); the rest default to greedy.
    static let cliSampling = SamplingParameters(repetitionPenalty: 1.2)
    static let cliMaxTokens = 128

    /// Sampling for an export with `defaults` (export.json's `generation.defaults`, nil when it has
    /// none): the CLI's own defaults, then the export's, then the flags.
    func sampling(defaults: GenerationDefaults?) -> SamplingParameters {
        samplingFlags.applied(to: defaults?.applied(to: Self.cliSampling) ?? Self.cliSampling)
    }

    /// Sampling for an export without defaults.
    var sampling: SamplingParameters { sampling(defaults: nil) }

    func maxTokens(defaults: GenerationDefaults?) -> Int {
        maxTokensFlag ?? defaults?.maxNewTokens ?? Self.cliMaxTokens
    }

    var maxTokens: Int { maxTokens(defaults: nil) }

    static let usage = """
        Usage: elm-run DIR --prompt TEXT [options]
               elm-run DIR --chat [options]

        Runs an OpenELM model exported by elm-export (a folder with export.json, the .mlpackage
        or .aimodel packages and tokenizer.json) with Core ML or Core AI, streaming the generated
        text, then a stats line. Sampling defaults come from the export (export.json's
        generation.defaults) when it has them; the flags below override them.

          DIR, --model DIR        the export folder
          --prompt TEXT           the text to continue
          --chat                  talk to an instruct model: each line read from stdin is a user turn,
                                  rendered with the export's chat template
          --max-tokens N          new tokens to generate at most (default 128)
          --format FORMAT         coreml | coreai: which of the folder's models to run (default: Core AI
                                  when the folder has it and the OS runs it, macOS 27+; else Core ML)
          --compute-units UNITS   all | cpuAndNeuralEngine | cpuAndGPU | cpuOnly (default cpuAndNeuralEngine)
          --temperature T         0 = greedy (default 0)
          --top-k K               sample from the K most likely tokens; 0 = off (default 0)
          --top-p P               sample from the smallest set reaching probability P; 1 = off (default 1)
          --min-p P               then drop tokens less likely than P times the most likely; 0 = off (default 0)
          --repetition-penalty R  CTRL-style penalty on tokens already seen; 1 = off (default 1.2, as OpenELM's model card)
          --seed N                random seed for sampling (default 0)
          --stop-token ID         also stop after this token id (repeatable; EOS and the export's stop tokens always stop)
          --speculate MODE        none | lookup | draft: speculative decoding, same output in fewer model calls
                                  (default lookup when the export has a verify function, else none)
          --draft DIR             a smaller export with the same vocabulary that drafts (implies --speculate draft)
          --adapter NAME          run with the export's LoRA adapter NAME (export.json's adapters; default: the
                                  base model); with --draft it applies to the target only, the draft runs its base
          -h, --help              show this help
        """

    /// nil when help was asked for.
    static func parse(_ arguments: [String]) throws -> RunOptions? {
        var options = RunOptions()
        var seen = Set<String>()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if argument == "-h" || argument == "--help" { return nil }
            guard argument.hasPrefix("--") else {
                guard !seen.contains("--model"), options.modelFolder.isEmpty else {
                    throw UsageError("unexpected argument '\(argument)'; options start with -- (quote a prompt with spaces)")
                }
                options.modelFolder = argument
                seen.insert("--model")
                continue
            }
            var name = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard Self.optionNames.contains(name) || Self.flagNames.contains(name) else {
                let known = (Self.optionNames + Self.flagNames).joined(separator: ", ")
                throw UsageError("unknown option '\(name)'; known options: \(known)")
            }
            let repeatable = name == "--stop-token"
            if name == "--model", seen.contains(name), !options.modelFolder.isEmpty {
                throw UsageError("the export folder is given twice ('\(options.modelFolder)' and --model)")
            }
            guard seen.insert(name).inserted || repeatable else { throw UsageError("option \(name) is given twice") }
            if Self.flagNames.contains(name) {
                guard value == nil else { throw UsageError("\(name) takes no value") }
                options.chat = true
                continue
            }
            if value == nil {
                guard let next = remaining.popFirst() else { throw UsageError("option \(name) needs a value") }
                value = next
            }
            try options.set(name, value!)
        }
        try options.check(seen)
        return options
    }

    private static let optionNames = [
        "--model", "--prompt", "--max-tokens", "--format", "--compute-units", "--temperature",
        "--top-k", "--top-p", "--min-p", "--repetition-penalty", "--seed", "--stop-token", "--speculate", "--draft",
        "--adapter",
    ]
    /// Options without a value.
    private static let flagNames = ["--chat"]

    /// What no single option can check.
    private func check(_ seen: Set<String>) throws {
        if modelFolder.isEmpty { throw UsageError("missing the export folder: elm-run DIR (or --model DIR), the folder elm-export wrote") }
        if chat, seen.contains("--prompt") { throw UsageError("give --prompt TEXT or --chat, not both") }
        if !chat, !seen.contains("--prompt") { throw UsageError("missing --prompt TEXT (or --chat to talk to an instruct model)") }
        if let problem = sampling.problem { throw UsageError(problem) }
        if draftFolder != nil, let speculation, speculation != .draft {
            throw UsageError("--draft DIR drafts for --speculate draft; drop --speculate \(speculation.rawValue) or --draft")
        }
        if speculation == .draft, draftFolder == nil { throw UsageError("--speculate draft needs --draft DIR (a smaller export of the same vocabulary)") }
    }

    private mutating func set(_ name: String, _ value: String) throws {
        switch name {
        case "--model": modelFolder = value
        case "--prompt": prompt = value
        case "--max-tokens": maxTokensFlag = try Self.number(name, value, Int.init, atLeast: 1)
        case "--format":
            guard let format = ExportFormat(rawValue: value) else {
                throw UsageError("--format must be one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")), got '\(value)'")
            }
            self.format = format
        case "--compute-units":
            guard let units = ComputeUnits(rawValue: value) else {
                throw UsageError("--compute-units must be one of \(ComputeUnits.allCases.map(\.rawValue).joined(separator: ", ")), got '\(value)'")
            }
            computeUnits = units
        case "--temperature": samplingFlags.temperature = try Self.number(name, value, Float.init, atLeast: 0)
        case "--top-k": samplingFlags.topK = try Self.number(name, value, Int.init, atLeast: 0)
        case "--top-p": samplingFlags.topP = try Self.number(name, value, Float.init, atLeast: 0)
        case "--min-p": samplingFlags.minP = try Self.number(name, value, Float.init, atLeast: 0)
        case "--repetition-penalty": samplingFlags.repetitionPenalty = try Self.number(name, value, Float.init, atLeast: 0)
        case "--seed": samplingFlags.seed = try Self.number(name, value, UInt64.init, atLeast: 0)
        case "--stop-token": stopTokens.append(try Self.number(name, value, Int.init, atLeast: 0))
        case "--speculate":
            guard let mode = Speculation(rawValue: value) else {
                throw UsageError("--speculate must be one of \(Speculation.allCases.map(\.rawValue).joined(separator: ", ")), got '\(value)'")
            }
            speculation = mode
        case "--draft": draftFolder = value
        case "--adapter":
            guard !value.isEmpty else { throw UsageError("--adapter needs an adapter name (export.json's adapters)") }
            adapter = value
        default: break
        }
    }

    private static func number<T: Comparable>(_ name: String, _ text: String, _ parse: (String) -> T?, atLeast minimum: T) throws -> T {
        guard let value = parse(text) else { throw UsageError("\(name) needs a number, got '\(text)'") }
        guard value >= minimum else { throw UsageError("\(name) must be at least \(minimum), got \(text)") }
        if let float = value as? Float, !float.isFinite { throw UsageError("\(name) must be finite, got \(text)") }
        return value
    }
}

/// The sampling flags given on the command line (nil: not given).
struct SamplingFlags: Equatable {
    var temperature: Float?
    var topK: Int?
    var topP: Float?
    var minP: Float?
    var repetitionPenalty: Float?
    var seed: UInt64?

    func applied(to base: SamplingParameters) -> SamplingParameters {
        GenerationDefaults(temperature: temperature, topK: topK, topP: topP, minP: minP,
                           repetitionPenalty: repetitionPenalty, seed: seed).applied(to: base)
    }
}
