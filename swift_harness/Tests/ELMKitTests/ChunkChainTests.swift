import Testing
@testable import ELMKit

/// Everything the fake chunks of one model did, in order.
final class ChunkLog {
    struct Call: Equatable {
        let chunk: Int
        let function: ModelFunction
        let position: Int
        let input: [[Float]]
        let cache: ObjectIdentifier
    }

    var calls: [Call] = []
    var statesMade: [Int] = []
}

/// A fake chunk's KV cache: which positions it was written at.
final class FakeCache {
    let chunk: Int
    var written: [Int] = []

    init(chunk: Int) { self.chunk = chunk }
}

/// Chunk k maps each hidden row [a, b] to [a + 1, 10b + k + 1]: the first entry counts the chunks
/// passed, the second spells their order in decimal (chunks 0, 1, 2 give 123; any other order does not).
/// Given a vocabulary, the chunk ends the model: it returns one-hot logits at token `a` after its own step.
struct FakeChunk: ModelChunk {
    struct Failure: Error {}

    let index: Int
    let log: ChunkLog
    var logitsVocabulary: Int?
    var failAtPosition: Int?

    func makeState() -> FakeCache {
        log.statesMade.append(index)
        return FakeCache(chunk: index)
    }

    func predict(_ function: ModelFunction, input: [[Float]], position: Int, state: FakeCache) throws -> [[Float]] {
        log.calls.append(.init(chunk: index, function: function, position: position, input: input, cache: ObjectIdentifier(state)))
        if position == failAtPosition { throw Failure() }
        state.written += position..<(position + input.count)
        let hidden = input.map { [$0[0] + 1, $0[1] * 10 + Float(index + 1)] }
        guard let vocabulary = logitsVocabulary else { return hidden }
        return hidden.map { row in
            var logits = [Float](repeating: 0, count: vocabulary)
            logits[Int(row[0]) % vocabulary] = 10
            return logits
        }
    }

    /// A model of `count` chunks; its next token after t is t + count.
    static func model(count: Int, vocabulary: Int = 32, contextLength: Int = 64, prefillLength: Int = 4, verifyLength: Int = 0,
                      failAt: (chunk: Int, position: Int)? = nil) throws -> (ChunkedLanguageModel<FakeChunk>, ChunkLog) {
        let log = ChunkLog()
        let chunks = (0..<count).map { k in
            FakeChunk(index: k, log: log, logitsVocabulary: k == count - 1 ? vocabulary : nil,
                      failAtPosition: failAt?.chunk == k ? failAt?.position : nil)
        }
        let model = try ChunkedLanguageModel(
            chunks: chunks, contextLength: contextLength, prefillLength: prefillLength, vocabularySize: vocabulary,
            tokenTensor: { ids in ids.map { [Float($0), 0] } },
            logitRows: { output, count in LogitRows(Array(output.prefix(count))) }, verifyLength: verifyLength)
        return (model, log)
    }
}

@Suite struct ChunkChainTests {
    @Test func runsEveryChunkInOrderHandingEachOutputToTheNext() throws {
        let log = ChunkLog()
        let chain = try ChunkChain((0..<3).map { FakeChunk(index: $0, log: log) })
        let output = try chain.run(.decode, input: [[5, 0]], position: 7)
        #expect(output == [[8, 123]])  // through 0, 1, 2, in that order
        #expect(log.calls.map(\.chunk) == [0, 1, 2])
        #expect(log.calls.map(\.input) == [[[5, 0]], [[6, 1]], [[7, 12]]])  // each input is the previous output
        #expect(log.calls.allSatisfy { $0.function == .decode && $0.position == 7 })
    }

    @Test func eachChunkHasItsOwnStateThatLastsUntilReset() throws {
        let log = ChunkLog()
        let chain = try ChunkChain((0..<3).map { FakeChunk(index: $0, log: log) })
        #expect(log.statesMade == [0, 1, 2])
        #expect(chain.states.map(\.chunk) == [0, 1, 2])
        _ = try chain.run(.prefill, input: [[1, 0], [2, 0]], position: 0)
        _ = try chain.run(.decode, input: [[3, 0]], position: 2)
        // Chunk k always got states[k]: three distinct caches, each kept across both calls.
        for k in 0..<3 {
            let caches = Set(log.calls.filter { $0.chunk == k }.map(\.cache))
            #expect(caches == [ObjectIdentifier(chain.states[k])])
            #expect(chain.states[k].written == [0, 1, 2])
        }
        let before = chain.states.map(ObjectIdentifier.init)
        try chain.reset()
        #expect(log.statesMade == [0, 1, 2, 0, 1, 2])
        #expect(chain.states.allSatisfy { $0.written.isEmpty })
        #expect(Set(chain.states.map(ObjectIdentifier.init)).isDisjoint(with: before))
    }

    @Test func aFailingChunkStopsTheCall() throws {
        let (model, log) = try FakeChunk.model(count: 3, failAt: (chunk: 1, position: 4))
        _ = try model.prefill(tokens: [1, 2, 3, 4], position: 0)
        #expect(throws: FakeChunk.Failure.self) { try model.prefill(tokens: [5], position: 4) }
        #expect(log.calls.suffix(2).map(\.chunk) == [0, 1])  // chunk 2 never ran
    }

    @Test func prefillIsPaddedAndOnlyRealRowsComeBack() throws {
        let (model, log) = try FakeChunk.model(count: 2, prefillLength: 4)
        let rows = try model.prefill(tokens: [9, 3], position: 6)
        #expect(log.calls[0].input == [[9, 0], [3, 0], [0, 0], [0, 0]])  // padded to prefillLength with id 0
        #expect(log.calls.map(\.position) == [6, 6])
        #expect(rows.count == 2)
        // The logits are the last chunk's output: token + 2 (two chunks passed).
        #expect(rows[0].firstIndex(of: 10) == 11 && rows[1].firstIndex(of: 10) == 5)
        let next = try model.decode(token: 20, position: 8)
        #expect(next.firstIndex(of: 10) == 22 && next.count == 32)
    }

    @Test func verifyIsPaddedLikePrefillAndGivesEveryRealRow() throws {
        let (model, log) = try FakeChunk.model(count: 2, verifyLength: 4)
        #expect(model.verifyLength == 4)
        let rows = try model.verify(tokens: [9, 3, 5], position: 6)
        #expect(log.calls.map(\.function) == [.verify, .verify] && log.calls.map(\.position) == [6, 6])
        #expect(log.calls[0].input == [[9, 0], [3, 0], [5, 0], [0, 0]])  // padded to verifyLength with id 0
        #expect(rows.count == 3 && (0..<3).map { rows[$0].firstIndex(of: 10) } == [11, 5, 7])
        let (plain, _) = try FakeChunk.model(count: 1)
        #expect(plain.verifyLength == 0)
        #expect(throws: GenerationError.self) { try plain.verify(tokens: [1], position: 0) }
    }

    @Test func oneChunkIsAnUnsplitModel() throws {
        let (model, log) = try FakeChunk.model(count: 1)
        #expect(try model.decode(token: 4, position: 0).firstIndex(of: 10) == 5)
        #expect(log.calls.count == 1 && log.statesMade == [0])
    }

    /// The Generator is unchanged: it drives a split model through `LanguageModel` like any other.
    @Test func generatorDrivesASplitModel() throws {
        let (model, log) = try FakeChunk.model(count: 3, prefillLength: 4)
        let result = try Generator(model: model).generate(promptTokens: Array(1...10), options: GenerationOptions(maxNewTokens: 3))
        #expect(result.tokens == [13, 16, 19])  // each token is the last one + 3: all three chunks ran every time

        // Every model call is one call of each chunk, in order, with the same function and position.
        let expected: [(ModelFunction, Int)] = [(.prefill, 0), (.prefill, 4), (.prefill, 8), (.decode, 10), (.decode, 11)]
        #expect(log.calls.count == expected.count * 3)
        for (n, (function, position)) in expected.enumerated() {
            let group = log.calls[(3 * n)..<(3 * n + 3)]
            #expect(group.map(\.chunk) == [0, 1, 2])
            #expect(group.allSatisfy { $0.function == function && $0.position == position }, "call \(n)")
        }
        // Generation starts with a reset: the states in use are the second set, one per chunk,
        // and each holds the positions of every call (the padded last prefill chunk included).
        #expect(log.statesMade == [0, 1, 2, 0, 1, 2])
        for k in 0..<3 {
            #expect(model.chain.states[k].written == Array(0..<12) + [10, 11])
            #expect(Set(log.calls.filter { $0.chunk == k }.map(\.cache)) == [ObjectIdentifier(model.chain.states[k])])
        }
    }
}
