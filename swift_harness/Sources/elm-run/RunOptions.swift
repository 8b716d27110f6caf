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
    var maxTokens = 128
    var computeUnits = ComputeUnits.cpuAndNeuralEngine
    /// nil: Core AI when the folder has it and the OS runs it, else Core ML.
    var format: ExportFormat?
    /// The CLI follows OpenELM's model card (repetition penalty 1.2); the rest default to greedy.
    var sampling = SamplingParameters(repetitionPenalty: 1.2)

    static let usage = """
        Usage: elm-run --model DIR --prompt TEXT [options]

        Runs an OpenELM model exported by elm-export (a folder with export.json, the .mlpackage
        or .aimodel packages and tokenizer.json) with Core ML or Core AI, streaming the generated
        text, then a stats line.

          --model DIR             the export folder
          --prompt TEXT           the text to continue
          --max-tokens N          new tokens to generate at most (default 128)
          --format FORMAT         coreml | coreai: which of the folder's models to run (default: Core AI
                                  when the folder has it and the OS runs it, macOS 27+; else Core ML)
          --compute-units UNITS   all | cpuAndNeuralEngine | cpuAndGPU | cpuOnly (default cpuAndNeuralEngine)
          --temperature T         0 = greedy (default 0)
          --top-k K               sample from the K most likely tokens; 0 = off (default 0)
          --top-p P               sample from the smallest set reaching probability P; 1 = off (default 1)
          --repetition-penalty R  CTRL-style penalty on tokens already seen; 1 = off (default 1.2, as OpenELM's model card)
          --seed N                random seed for sampling (default 0)
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
                throw UsageError("unexpected argument '\(argument)'; options start with -- (quote a prompt with spaces)")
            }
            var name = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard Self.optionNames.contains(name) else {
                throw UsageError("unknown option '\(name)'; known options: \(Self.optionNames.joined(separator: ", "))")
            }
            guard seen.insert(name).inserted else { throw UsageError("option \(name) is given twice") }
            if value == nil {
                guard let next = remaining.popFirst() else { throw UsageError("option \(name) needs a value") }
                value = next
            }
            try options.set(name, value!)
        }
        if options.modelFolder.isEmpty { throw UsageError("missing --model DIR (the folder elm-export wrote)") }
        if !seen.contains("--prompt") { throw UsageError("missing --prompt TEXT") }
        if let problem = options.sampling.problem { throw UsageError(problem) }
        return options
    }

    private static let optionNames = [
        "--model", "--prompt", "--max-tokens", "--format", "--compute-units", "--temperature",
        "--top-k", "--top-p", "--repetition-penalty", "--seed",
    ]

    private mutating func set(_ name: String, _ value: String) throws {
        switch name {
        case "--model": modelFolder = value
        case "--prompt": prompt = value
        case "--max-tokens": maxTokens = try Self.number(name, value, Int.init, atLeast: 1)
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
        case "--temperature": sampling.temperature = try Self.number(name, value, Float.init, atLeast: 0)
        case "--top-k": sampling.topK = try Self.number(name, value, Int.init, atLeast: 0)
        case "--top-p": sampling.topP = try Self.number(name, value, Float.init, atLeast: 0)
        case "--repetition-penalty": sampling.repetitionPenalty = try Self.number(name, value, Float.init, atLeast: 0)
        case "--seed": sampling.seed = try Self.number(name, value, UInt64.init, atLeast: 0)
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
