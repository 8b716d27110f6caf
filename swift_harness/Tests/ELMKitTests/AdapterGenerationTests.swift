import Testing
@testable import ELMKit

/// Which functions the chunks of one model ran, by the name they were loaded under.
final class FunctionCallLog {
    /// Every name loaded, per chunk, in load order.
    var loaded: [[String]] = []
    /// Every call: the chunk and the name of the function it ran.
    var calls: [(chunk: Int, name: String)] = []

    var calledNames: Set<String> { Set(calls.map(\.name)) }
}

/// A package that computes nothing real but loads its functions through `ChunkFunctions`, as
/// `CoreMLChunk` and `CoreAIChunk` do, and records the name of every function it runs. The last
/// chunk gives one-hot logits at token + 1 of each row.
struct NamedFunctionChunk: ModelChunk {
    final class Cache {}

    let index: Int
    let functions: ChunkFunctions<String>
    let vocabulary: Int?
    let log: FunctionCallLog

    init(index: Int, spec: ChunkSpec, names: FunctionNames, vocabulary: Int?, log: FunctionCallLog) throws {
        self.index = index
        self.vocabulary = vocabulary
        self.log = log
        log.loaded.append([])
        functions = try ChunkFunctions(spec: spec, names: names) { name in
            log.loaded[index].append(name)
            return name
        }
    }

    func makeState() -> Cache { Cache() }

    func predict(_ function: ModelFunction, input: [[Float]], position: Int, state: Cache) throws -> [[Float]] {
        output(try functions.body(function), input)
    }

    func embed(_ call: NeuralEngineCall, ids: [[Float]]) throws -> [[Float]] {
        output(try functions.embed(call.function), ids, isEmbed: true)
    }

    func predict(_ call: NeuralEngineCall, input: [[Float]], state: Cache) throws -> [[Float]] {
        output(try functions.body(call.function), input)
    }

    private func output(_ name: String, _ input: [[Float]], isEmbed: Bool = false) -> [[Float]] {
        log.calls.append((index, name))
        guard let vocabulary, !isEmbed else { return input }
        return input.map { row in
            var logits = [Float](repeating: 0, count: vocabulary)
            logits[(Int(row[0]) + 1) % vocabulary] = 10
            return logits
        }
    }

    /// `manifest`'s model in `format`, running `adapter` (nil: the base model), driven as the real ones are.
    static func model(_ manifest: ExportManifest, format: ExportFormat = .coreML,
                      adapter: String?) throws -> (ChunkedLanguageModel<NamedFunctionChunk>, FunctionCallLog) {
        let names = try FunctionNames(manifest: manifest, adapter: adapter)
        let log = FunctionCallLog()
        let specs = manifest.chunks(for: format)
        let chunks = try specs.enumerated().map { k, spec in
            try NamedFunctionChunk(index: k, spec: spec, names: names,
                                   vocabulary: k == specs.count - 1 ? manifest.vocabSize : nil, log: log)
        }
        let model = try ChunkedLanguageModel(
            chunks: chunks, contextLength: manifest.contextLength, prefillLength: manifest.prefillLength,
            vocabularySize: manifest.vocabSize, tokenTensor: { ids in ids.map { [Float($0)] } },
            logitRows: { output, count in LogitRows(Array(output.prefix(count))) },
            neuralEngine: manifest.neuralEngineInputs, verifyLength: manifest.verifyLength ?? 0)
        return (model, log)
    }
}

@Suite struct AdapterGenerationTests {
    /// The fake predicts token + 1, which the prompt's earlier run shows: prompt lookup drafts it.
    let prompt = Array(1...30) + Array(1...30) + Array(1...10)

    func generate(_ model: any LanguageModel, drafter: (any Drafter)? = nil) throws -> GenerationResult {
        try Generator(model: model, drafter: drafter).generate(promptTokens: prompt, options: GenerationOptions(maxNewTokens: 12))
    }

    /// Every package of a split export runs the adapter's prefill and decode, never the base ones.
    @Test func aSplitExportRunsTheAdaptersFunctionsInEveryPackage() throws {
        let manifest = try AdapterFixtures.split()
        let (model, log) = try NamedFunctionChunk.model(manifest, adapter: "psalms")
        let result = try generate(model)
        #expect(log.loaded == Array(repeating: ["prefill_psalms", "decode_psalms", "verify_psalms"], count: 3))
        #expect(log.calledNames == ["prefill_psalms", "decode_psalms"])
        #expect(Set(log.calls.map(\.chunk)) == [0, 1, 2])
        #expect(result.tokens.count == 12)

        let (base, baseLog) = try NamedFunctionChunk.model(manifest, adapter: nil)
        #expect(try generate(base).tokens == result.tokens)  // the fake's output does not depend on the names
        #expect(baseLog.loaded == Array(repeating: ["prefill", "decode", "verify"], count: 3))
        #expect(baseLog.calledNames == ["prefill", "decode"])
    }

    /// The ane export, both formats: the embed functions, the body functions and verify (prompt
    /// lookup) are all the adapter's.
    @Test(arguments: ExportFormat.allCases)
    func anAneExportRunsTheAdaptersEmbedBodyAndVerifyFunctions(_ format: ExportFormat) throws {
        let manifest = try AdapterFixtures.ane()
        let (model, log) = try NamedFunctionChunk.model(manifest, format: format, adapter: "proverbs")
        let result = try generate(model, drafter: PromptLookupDrafter())
        #expect(result.stats.calls.verify > 0 && result.stats.calls.prefill > 0)
        #expect(log.calledNames == ["embed_prefill_proverbs", "prefill_proverbs", "embed_decode_proverbs", "decode_proverbs",
                                    "embed_verify_proverbs", "verify_proverbs"])

        let (base, baseLog) = try NamedFunctionChunk.model(manifest, format: format, adapter: nil)
        #expect(try generate(base, drafter: PromptLookupDrafter()).tokens == result.tokens)
        #expect(baseLog.calledNames == ["embed_prefill", "prefill", "embed_decode", "decode", "embed_verify", "verify"])
    }

    /// elm-run --adapter with --draft: the target verifies with the adapter, the draft model (its
    /// own export, loaded with no adapter) drafts with its base functions.
    @Test func withADraftModelTheAdapterIsTheTargetsOnly() throws {
        let manifest = try AdapterFixtures.split()
        let (target, targetLog) = try NamedFunctionChunk.model(manifest, adapter: "psalms")
        let (draft, draftLog) = try NamedFunctionChunk.model(manifest, adapter: nil)
        let result = try generate(target, drafter: DraftModelDrafter(model: draft))
        #expect(result.stats.calls.verify > 0 && result.stats.draftsAccepted > 0)
        #expect(targetLog.calledNames.contains("verify_psalms"))
        #expect(targetLog.calledNames.allSatisfy { $0.hasSuffix("_psalms") })
        #expect(draftLog.calledNames == ["prefill", "decode"])
    }

    /// A package whose export.json listing lacks an adapter function fails before loading it,
    /// naming the package and the function.
    @Test func anAdapterFunctionThePackageDoesNotListIsAManifestError() throws {
        let manifest = try AdapterFixtures.split()
        let names = try FunctionNames(manifest: manifest, adapter: "psalms")
        let spec = manifest.chunks[1]
        var listing = try #require(spec.listedFunctions)
        listing.remove("decode_psalms")
        let unlisted = ChunkSpec(package: spec.package, layers: spec.layers, input: spec.input, output: spec.output,
                                 prefill: spec.prefill, decode: spec.decode, states: spec.states, verify: spec.verify,
                                 listedFunctions: listing)
        var loaded: [String] = []
        let error = #expect(throws: ManifestError.self) { try ChunkFunctions(spec: unlisted, names: names) { loaded.append($0) } }
        #expect(error?.source == "OpenELM-tiny-int4-2of3.mlpackage")
        #expect(error?.reason.contains("lists no 'decode_psalms' function") == true, "\(error.map { "\($0)" } ?? "")")
        #expect(loaded == ["prefill_psalms"])
        // The base functions of the same package load as ever.
        _ = try ChunkFunctions(spec: unlisted, names: .base) { _ in () }
    }
}
