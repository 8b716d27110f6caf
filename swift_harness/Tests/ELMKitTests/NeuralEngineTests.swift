import Foundation
import Testing
@testable import ELMKit

/// Values written by exporter.graph.host_inputs (rotary_input, mask_input), float16 as numbers.
struct NeuralEngineInputsGolden: Decodable {
    struct Rotary: Decodable {
        let head_dim: Int
        let base: Double
        let position: Int
        let tokens: Int
        let shape: [Int]
        let values: [Double]
    }

    struct Mask: Decodable {
        let position: Int
        let tokens: Int
        let context_length: Int
        let shape: [Int]
        let values: [Double]
    }

    let mask_value: Double
    let rotary: [Rotary]
    let mask: [Mask]
}

/// The ane export.json (`elm-export --target ane`) and the contract it states.
@Suite struct NeuralEngineManifestTests {
    static let fixture = "manifest_exported_ane.json"

    static func text() throws -> String {
        try String(contentsOf: Fixtures.url(fixture), encoding: .utf8)
    }

    @Test func theAneExportParsesWithItsFunctions() throws {
        let m = try ExportManifest.load(from: Fixtures.url(Self.fixture))
        #expect(m.graphTarget == .ane)
        #expect(m.graph.functions == ["embed_prefill", "embed_decode", "embed_verify", "prefill", "decode", "verify"])
        #expect(m.verifyLength == 5 && m.graph.verifyLength == 5)
        #expect(m.graph.prefillLogits == false)
        #expect(m.graph.maskValue == -40000)
        #expect(m.headDim == 16 && m.ropeFreqConstant == 10000 && m.modelDim == 192)
        #expect(m.chunks.count == 1)
        let chunk = m.chunks[0]
        #expect(chunk.input == ChunkSpec.hiddenIn && chunk.output == ChunkSpec.logits)
        #expect(chunk.embedPrefill?.input("input_ids")?.shape == [1, 16])
        #expect(chunk.embedDecode?.input("input_ids")?.shape == [1, 1])
        #expect(chunk.embedDecode?.output("hidden_out")?.shape == [1, 1, 192])
        #expect(chunk.prefill.input("rotary")?.shape == [1, 16, 32])
        #expect(chunk.decode.input("mask")?.shape == [1, 1, 256])
        // prefill gives no logits (prompt_opt): its output is hidden_out, which nobody reads.
        #expect(chunk.outputName(of: .prefill) == ChunkSpec.hiddenOut)
        #expect(chunk.outputName(of: .decode) == ChunkSpec.logits)
        #expect(chunk.states.first { $0.name == "value_cache" }?.shape == [1, 32, 32, 256])
        let inputs = try #require(m.neuralEngineInputs)
        #expect(inputs.headDim == 16 && inputs.contextLength == 256 && inputs.maskValue == -40000)
        #expect(inputs.rotaryWidth == chunk.decode.input("rotary")?.shape.last)
    }

    @Test func exportsWithoutAGraphSectionAreGPU() throws {
        for name in ["manifest_exported_both.json", "manifest_both_formats.json", "manifest_without_formats.json"] {
            let m = try ExportManifest.load(from: Fixtures.url(name))
            #expect(m.graphTarget == .gpu, "\(name)")
            #expect(m.graph.prefillLogits && m.neuralEngineInputs == nil, "\(name)")
            #expect(m.chunks.allSatisfy { $0.embedPrefill == nil && $0.embedDecode == nil }, "\(name)")
        }
        let explicit = ManifestFixtures.edited(ManifestFixtures.split) { $0["graph"] = ["target": "gpu"] }
        #expect(try ExportManifest(data: Data(explicit.utf8)).graphTarget == .gpu)
    }

    @Test func mismatchedAneManifestsFailWithTheFieldToLookAt() throws {
        let text = try Self.text()
        let unknown = ManifestFixtures.edited(text) { $0["graph"] = ["target": "tpu"] }
        #expect(ManifestFixtures.message(unknown).contains("graph.target is 'tpu'"))

        let noEmbed = ManifestFixtures.editedChunk(text, 0) { chunk in
            var functions = chunk["functions"] as! [String: Any]
            functions["embed_decode"] = nil
            chunk["functions"] = functions
        }
        #expect(ManifestFixtures.message(noEmbed).contains("chunks[0].functions.embed_decode is missing"))

        let noHeadDim = ManifestFixtures.edited(text) { object in
            var model = object["model"] as! [String: Any]
            model["head_dim"] = nil
            object["model"] = model
        }
        #expect(ManifestFixtures.message(noHeadDim).contains("model.head_dim"))

        let wrongRotary = ManifestFixtures.editedChunk(text, 0) { chunk in
            var functions = chunk["functions"] as! [String: [String: Any]]
            var inputs = functions["decode"]!["inputs"] as! [[String: Any]]
            let index = inputs.firstIndex { $0["name"] as? String == "rotary" }!
            inputs[index]["shape"] = [1, 1, 16]
            functions["decode"]!["inputs"] = inputs
            chunk["functions"] = functions
        }
        #expect(ManifestFixtures.message(wrongRotary).contains("chunks[0].functions.decode.rotary is float16 [1, 1, 16], expected float16 [1, 1, 32]"))

        let idsIn = ManifestFixtures.editedChunk(text, 0) { $0["input"] = "input_ids" }
        #expect(ManifestFixtures.message(idsIn).contains("chunks[0].input is 'input_ids', expected 'hidden_in'"))
    }
}

/// Rotary rows and mask, against Python's values, and the calls that feed a prompt.
@Suite struct NeuralEngineInputsTests {
    @Test func rotaryAndMaskMatchPythonBitForBit() throws {
        let golden = try Fixtures.decode(NeuralEngineInputsGolden.self, from: "neural_engine_inputs_golden.json")
        #expect(golden.rotary.count >= 8 && golden.mask.count >= 4)
        for c in golden.rotary {
            let inputs = NeuralEngineInputs(headDim: c.head_dim, ropeFreqConstant: c.base, contextLength: 64)
            let got = inputs.rotary(position: c.position, tokens: c.tokens)
            let expected = c.values.map { NeuralEngineInputs.halfBits(Float($0)) }
            #expect(c.shape == [1, c.tokens, inputs.rotaryWidth])
            let mismatches = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
            #expect(got.count == expected.count && mismatches.isEmpty,
                    "head_dim \(c.head_dim) base \(c.base) position \(c.position) T \(c.tokens): \(mismatches.count) differ, first \(mismatches.first.map { "\($0.offset): \($0.element)" } ?? "-")")
        }
        for c in golden.mask {
            let inputs = NeuralEngineInputs(headDim: 16, ropeFreqConstant: 10000, contextLength: c.context_length,
                                            maskValue: Float(golden.mask_value))
            let got = inputs.mask(position: c.position, tokens: c.tokens)
            #expect(got == c.values.map { NeuralEngineInputs.halfBits(Float($0)) }, "position \(c.position) T \(c.tokens)")
            #expect(c.shape == [1, c.tokens, c.context_length])
        }
    }

    @Test func rotaryRowsAreCosTwiceThenSinWithTheFirstHalfNegated() {
        let inputs = NeuralEngineInputs(headDim: 4, ropeFreqConstant: 10000, contextLength: 8)
        let row = inputs.rotary(position: 1, tokens: 1)
        let f1 = Float(1) / Float(Foundation.pow(10000.0, 0.5))
        let half = { NeuralEngineInputs.halfBits($0) }
        #expect(row == [half(Float(Foundation.cos(1.0))), half(cos(f1)), half(Float(Foundation.cos(1.0))), half(cos(f1)),
                        half(-Float(Foundation.sin(1.0))), half(-sin(f1)), half(Float(Foundation.sin(1.0))), half(sin(f1))])
        #expect(inputs.mask(position: 2, tokens: 2) == [0, 0, 0, half(-40000), half(-40000), half(-40000), half(-40000), half(-40000),
                                                        0, 0, 0, 0, half(-40000), half(-40000), half(-40000), half(-40000)])
    }

    @Test func halfConversionRoundsToNearestEven() {
        let half = NeuralEngineInputs.halfBits
        #expect(half(1) == 0x3C00 && half(-2) == 0xC000 && half(0) == 0 && half(-0.0) == 0x8000)
        #expect(half(65504) == 0x7BFF && half(65520) == 0x7C00 && half(.infinity) == 0x7C00)
        #expect(half(-40000) == 0xF8E2)
        #expect(half(0x1p-24) == 0x0001 && half(0x1p-25) == 0 && half(0x1.8p-25) == 0x0001 && half(0x1p-14) == 0x0400)
        #expect(half(1 + 0x1p-11) == 0x3C00 && half(1 + 0x1.8p-11) == 0x3C01 && half(1 + 0x3p-11) == 0x3C02)
        #expect(half(.nan) & 0x7C00 == 0x7C00 && half(.nan) & 0x03FF != 0)
        #if !(os(macOS) && arch(x86_64))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let value = Float(bitPattern: UInt32.random(in: 0x3000_0000...0x4780_0000, using: &generator))
            #expect(half(value) == Float16(value).bitPattern, "\(value)")
            #expect(half(-value) == Float16(-value).bitPattern, "\(-value)")
        }
        #endif
    }

    /// P = 16 as in the fixture: the prompt but its last token through prefill in chunks of P,
    /// then the last token through decode at its index.
    @Test func promptPlanForTheNeuralEngine() {
        let p = 16
        func plan(_ n: Int, context: Int = 256) -> [PromptCall] {
            NeuralEngineInputs.promptPlan(promptLength: n, prefillLength: p, contextLength: context)
        }
        func prefillStarts(_ calls: [PromptCall]) -> [Int] {
            calls.compactMap { if case .prefill(let range) = $0 { range.lowerBound } else { nil } }
        }
        #expect(plan(1) == [.decode(0)])  // one token: no prefill call
        #expect(plan(p) == [.prefill(0..<15), .decode(15)])
        #expect(plan(p + 1) == [.prefill(0..<16), .decode(16)])
        #expect(plan(2 * p + 3) == [.prefill(0..<16), .prefill(16..<32), .prefill(32..<34), .decode(34)])
        for (n, calls, first) in [(1, 0, 0), (p, 1, 15), (p + 1, 1, 16), (2 * p + 3, 3, 34)] {
            let steps = plan(n)
            #expect(prefillStarts(steps).count == calls && steps.last == .decode(first), "prompt of \(n)")
            #expect(prefillStarts(steps) == Array(stride(from: 0, to: n - 1, by: p)), "prompt of \(n)")
        }
        // As export.json's verification records it: 35 prompt tokens, 3 prefill calls.
        #expect(prefillStarts(plan(35)).count == 3)
        // Near the end of the context a padded chunk would not fit: token by token, as for gpu.
        #expect(plan(19, context: 20) == [.prefill(0..<16), .decode(16), .decode(17), .decode(18)])
    }

    @Test func promptPlanForTheGPUIsUnchanged() {
        func plan(_ n: Int, context: Int = 256) -> [PromptCall] {
            PromptPlan.calls(promptLength: n, prefillLength: 16, contextLength: context, prefillGivesLogits: true)
        }
        #expect(plan(1) == [.prefill(0..<1)])
        #expect(plan(16) == [.prefill(0..<16)])
        #expect(plan(35) == [.prefill(0..<16), .prefill(16..<32), .prefill(32..<35)])
        #expect(plan(19, context: 20) == [.prefill(0..<16), .decode(16), .decode(17), .decode(18)])
    }
}

/// Everything the fake ane chunks of one model did, in order.
final class NeuralEngineLog {
    enum Event: Equatable {
        case embed(chunk: Int, function: String, ids: [Int])
        case body(chunk: Int, function: ModelFunction, position: Int, tokens: Int, cache: ObjectIdentifier)
    }

    var events: [Event] = []
    var calls: [NeuralEngineCall] = []
}

/// An ane chunk on [[Float]] rows: embed maps id t to [t, 0]; body chunk k maps [a, b] to
/// [a + 1, 10b + k + 1]; the last chunk's decode and verify give one-hot logits at token a, its
/// prefill the hidden rows (never read). The gpu entry point must never be used.
struct FakeNeuralEngineChunk: ModelChunk {
    let index: Int
    let isLast: Bool
    let vocabulary: Int
    let log: NeuralEngineLog

    func makeState() -> FakeCache { FakeCache(chunk: index) }

    func predict(_ function: ModelFunction, input: [[Float]], position: Int, state: FakeCache) throws -> [[Float]] {
        Issue.record("an ane chunk was called the gpu way")
        return input
    }

    func embed(_ call: NeuralEngineCall, ids: [[Float]]) throws -> [[Float]] {
        log.events.append(.embed(chunk: index, function: call.embedFunction, ids: ids.map { Int($0[0]) }))
        return ids.map { [$0[0], 0] }
    }

    func predict(_ call: NeuralEngineCall, input: [[Float]], state: FakeCache) throws -> [[Float]] {
        log.events.append(.body(chunk: index, function: call.function, position: call.position, tokens: call.tokens,
                                cache: ObjectIdentifier(state)))
        log.calls.append(call)
        state.written += call.position..<(call.position + input.count)
        let hidden = input.map { [$0[0] + 1, $0[1] * 10 + Float(index + 1)] }
        guard isLast, call.function != .prefill else { return hidden }
        return hidden.map { row in
            var logits = [Float](repeating: 0, count: vocabulary)
            logits[Int(row[0]) % vocabulary] = 10
            return logits
        }
    }

    static func model(count: Int, vocabulary: Int = 32, contextLength: Int = 64, prefillLength: Int = 4, verifyLength: Int = 0)
        throws -> (ChunkedLanguageModel<FakeNeuralEngineChunk>, NeuralEngineLog)
    {
        let log = NeuralEngineLog()
        let chunks = (0..<count).map { FakeNeuralEngineChunk(index: $0, isLast: $0 == count - 1, vocabulary: vocabulary, log: log) }
        let inputs = NeuralEngineInputs(headDim: 16, ropeFreqConstant: 10000, contextLength: contextLength)
        let model = try ChunkedLanguageModel(
            chunks: chunks, contextLength: contextLength, prefillLength: prefillLength, vocabularySize: vocabulary,
            tokenTensor: { ids in ids.map { [Float($0), 0] } },
            logitRows: { output, count in LogitRows(Array(output.prefix(count))) },
            neuralEngine: inputs, verifyLength: verifyLength)
        return (model, log)
    }
}

/// The ane contract driven through `ChunkedLanguageModel` and `Generator`, as the Core ML and
/// Core AI models drive it.
@Suite struct NeuralEngineDrivingTests {
    @Test func generatorPrefillsAllButTheLastTokenThenDecodesIt() throws {
        let (model, log) = try FakeNeuralEngineChunk.model(count: 3, prefillLength: 4)
        #expect(!model.prefillGivesLogits)
        let result = try Generator(model: model).generate(promptTokens: Array(1...10), options: GenerationOptions(maxNewTokens: 3))
        #expect(result.tokens == [13, 16, 19])  // the logits of the last prompt token's decode, all three chunks ran

        // prefill of ids 1-9 at 0, 4, 8 (the last padded), then decode of 10 at 9, of 13 at 10, 16 at 11.
        let expected: [(ModelFunction, Int, [Int])] = [(.prefill, 0, [1, 2, 3, 4]), (.prefill, 4, [5, 6, 7, 8]), (.prefill, 8, [9, 0, 0, 0]),
                                                       (.decode, 9, [10]), (.decode, 10, [13]), (.decode, 11, [16])]
        #expect(log.events.count == expected.count * 4)
        for (n, (function, position, ids)) in expected.enumerated() {
            let group = Array(log.events[(4 * n)..<(4 * n + 4)])
            let tokens = function == .prefill ? 4 : 1
            #expect(group[0] == .embed(chunk: 0, function: "embed_\(function.rawValue)", ids: ids), "call \(n)")
            for k in 0..<3 {
                #expect(group[k + 1] == .body(chunk: k, function: function, position: position, tokens: tokens,
                                              cache: ObjectIdentifier(model.chain.states[k])), "call \(n) chunk \(k)")
            }
        }
        // Every chunk of a call got the same rotary and mask, those of its position and length.
        let inputs = try #require(model.neuralEngine)
        for (n, (function, position, _)) in expected.enumerated() {
            let tokens = function == .prefill ? 4 : 1
            let wanted = inputs.call(function, position: position, tokens: tokens)
            #expect(log.calls[(3 * n)..<(3 * n + 3)].allSatisfy { $0 == wanted }, "call \(n)")
            #expect(wanted.rotary.count == tokens * 32 && wanted.mask.count == tokens * 64)
        }
        // Each cache holds every call's positions: the padded prefill's 9-11, overwritten by the decodes.
        for k in 0..<3 { #expect(model.chain.states[k].written == Array(0..<12) + [9, 10, 11]) }
    }

    @Test func aOneTokenPromptHasNoPrefillCall() throws {
        let (model, log) = try FakeNeuralEngineChunk.model(count: 2)
        let result = try Generator(model: model).generate(promptTokens: [5], options: GenerationOptions(maxNewTokens: 2))
        #expect(result.tokens == [7, 9])
        let bodies = log.events.compactMap { event -> (ModelFunction, Int)? in
            if case .body(let chunk, let function, let position, _, _) = event, chunk == 0 { return (function, position) }
            return nil
        }
        #expect(bodies.map(\.0) == [.decode, .decode] && bodies.map(\.1) == [0, 1])
    }

    @Test func prefillReturnsNoRowsAndDecodeTheLogits() throws {
        let (model, log) = try FakeNeuralEngineChunk.model(count: 1, prefillLength: 4)
        let rows = try model.prefill(tokens: [3, 4], position: 0)
        #expect(rows.count == 0)
        #expect(log.events.first == .embed(chunk: 0, function: "embed_prefill", ids: [3, 4, 0, 0]))
        let logits = try model.decode(token: 4, position: 2)
        #expect(logits.count == 32 && logits.firstIndex(of: 10) == 5)
    }

    /// verify takes the same caller inputs as prefill and decode, for T = verify_length, and
    /// (unlike the ane prefill) gives logits for every row.
    @Test func verifyRunsEmbedVerifyThenEveryChunkWithItsRotaryAndMask() throws {
        let (model, log) = try FakeNeuralEngineChunk.model(count: 2, contextLength: 64, verifyLength: 3)
        let rows = try model.verify(tokens: [7, 8], position: 10)
        let states = model.chain.states.map(ObjectIdentifier.init)
        #expect(log.events == [
            .embed(chunk: 0, function: "embed_verify", ids: [7, 8, 0]),
            .body(chunk: 0, function: .verify, position: 10, tokens: 3, cache: states[0]),
            .body(chunk: 1, function: .verify, position: 10, tokens: 3, cache: states[1]),
        ])
        let wanted = try #require(model.neuralEngine).call(.verify, position: 10, tokens: 3)
        #expect(log.calls.allSatisfy { $0 == wanted } && wanted.embedFunction == "embed_verify")
        #expect(wanted.rotaryShape == [1, 3, 32] && wanted.maskShape == [1, 3, 64])
        #expect(rows.count == 2 && rows[0].firstIndex(of: 10) == 9 && rows[1].firstIndex(of: 10) == 10)
    }

    @Test func gpuChunksRefuseTheNeuralEngineCalls() throws {
        let chunk = FakeChunk(index: 0, log: ChunkLog())
        let call = NeuralEngineInputs(headDim: 4, ropeFreqConstant: 10000, contextLength: 8).call(.decode, position: 0, tokens: 1)
        #expect(throws: NeuralEngineCallUnsupported.self) { try chunk.embed(call, ids: [[1, 0]]) }
        let (model, _) = try FakeChunk.model(count: 1)
        #expect(model.prefillGivesLogits)
    }
}
