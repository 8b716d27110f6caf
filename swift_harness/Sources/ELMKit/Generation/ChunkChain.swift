/// One package of a model, as the chain sees it: a function call on its own state. Core ML's
/// chunk is `CoreMLChunk` (MLMultiArray, MLState), Core AI's `CoreAIChunk` (NDArray,
/// `CoreAIKVCache`); tests use scripted chunks.
public protocol ModelChunk {
    /// What flows between chunks: token ids into the first, hidden states between, logits out of the last.
    associatedtype Tensor
    /// The chunk's KV cache; it persists across calls until the chain is reset.
    associatedtype State

    func makeState() throws -> State

    /// Runs `function` on `input` for the tokens at `position`, `position + 1`, ... and returns the output.
    func predict(_ function: ModelFunction, input: Tensor, position: Int, state: State) throws -> Tensor

    /// The ane target's token lookup (first chunk only): `call.embedFunction` on input_ids [1, T],
    /// giving hidden_out [1, T, model_dim]. Stateless.
    func embed(_ call: NeuralEngineCall, ids: Tensor) throws -> Tensor

    /// The ane target's body call: `call.function` on hidden_in with the call's position, rotary
    /// and mask; returns the chunk's output (logits from the last chunk's decode, else hidden_out).
    func predict(_ call: NeuralEngineCall, input: Tensor, state: State) throws -> Tensor
}

/// Chunks of gpu exports need neither ane call.
public struct NeuralEngineCallUnsupported: Error, CustomStringConvertible {
    public let chunk: String
    public var description: String { "\(chunk) does not run the Neural Engine (ane) graph's calls" }
}

extension ModelChunk {
    public func embed(_ call: NeuralEngineCall, ids: Tensor) throws -> Tensor {
        throw NeuralEngineCallUnsupported(chunk: "\(Self.self)")
    }

    public func predict(_ call: NeuralEngineCall, input: Tensor, state: State) throws -> Tensor {
        throw NeuralEngineCallUnsupported(chunk: "\(Self.self)")
    }
}

/// Runs a call through every chunk in order: the same function and position for each, chunk k's
/// output as chunk k+1's input, each chunk on its own state. The last chunk's output is the result.
public final class ChunkChain<Chunk: ModelChunk> {
    public let chunks: [Chunk]
    /// `states[k]` belongs to `chunks[k]`; the caches are per chunk because each holds its own layers.
    private(set) var states: [Chunk.State]

    public init(_ chunks: [Chunk]) throws {
        precondition(!chunks.isEmpty, "a chain needs at least one chunk")
        self.chunks = chunks
        states = try chunks.map { try $0.makeState() }
    }

    /// Fresh states for every chunk: the model forgets every token seen so far.
    public func reset() throws {
        states = try chunks.map { try $0.makeState() }
    }

    public func run(_ function: ModelFunction, input: Chunk.Tensor, position: Int) throws -> Chunk.Tensor {
        var tensor = input
        for (chunk, state) in zip(chunks, states) {
            tensor = try chunk.predict(function, input: tensor, position: position, state: state)
        }
        return tensor
    }

    /// One call of the ane graph: the first chunk's embed function looks `ids` up, then every
    /// chunk in order runs the body function with the same position, rotary and mask, each on its
    /// own state, its hidden_out the next chunk's hidden_in. The last chunk's output is the result.
    public func run(_ call: NeuralEngineCall, ids: Chunk.Tensor) throws -> Chunk.Tensor {
        var tensor = try chunks[0].embed(call, ids: ids)
        for (chunk, state) in zip(chunks, states) {
            tensor = try chunk.predict(call, input: tensor, state: state)
        }
        return tensor
    }
}

/// A `LanguageModel` over a chain of chunks (one chunk for an unsplit export): pads prefill and
/// verify calls to their fixed lengths, runs the chain, and reads the logits rows of the real tokens. The tensor
/// conversions at the two ends are given by the backend.
///
/// Given `neuralEngine` (an ane export), every call goes through the embed function and carries
/// the rotary rows and mask computed for it, and prefill returns no logits (`prefillGivesLogits`
/// is false): `Generator` decodes the prompt's last token for them.
public final class ChunkedLanguageModel<Chunk: ModelChunk>: LanguageModel {
    public let contextLength: Int
    public let prefillLength: Int
    public let vocabularySize: Int
    /// Tokens per verify call; 0 when the chunks have no verify function.
    public let verifyLength: Int
    public let chain: ChunkChain<Chunk>
    /// The ane target's caller-computed inputs; nil for gpu.
    public let neuralEngine: NeuralEngineInputs?
    public var prefillGivesLogits: Bool { neuralEngine == nil }
    private let tokenTensor: ([Int32]) throws -> Chunk.Tensor
    private let logitRows: (Chunk.Tensor, Int) throws -> LogitRows

    /// - Parameters:
    ///   - tokenTensor: the first chunk's input for these token ids ([1, T]).
    ///   - logitRows: the first `count` rows of the last chunk's output, cut to the vocabulary.
    ///   - verifyLength: tokens per verify call (export.json's `verify_length`), 0 for none.
    public init(chunks: [Chunk], contextLength: Int, prefillLength: Int, vocabularySize: Int,
                tokenTensor: @escaping ([Int32]) throws -> Chunk.Tensor,
                logitRows: @escaping (_ output: Chunk.Tensor, _ count: Int) throws -> LogitRows,
                neuralEngine: NeuralEngineInputs? = nil, verifyLength: Int = 0) throws {
        self.neuralEngine = neuralEngine
        self.verifyLength = verifyLength
        self.contextLength = contextLength
        self.prefillLength = prefillLength
        self.vocabularySize = vocabularySize
        self.tokenTensor = tokenTensor
        self.logitRows = logitRows
        chain = try ChunkChain(chunks)
    }

    public func reset() throws {
        try chain.reset()
    }

    public func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        precondition(!tokens.isEmpty && tokens.count <= prefillLength, "prefill takes 1...\(prefillLength) tokens")
        // Pad to the fixed prefill length; the padding's logits are never read and its cache
        // entries sit beyond the real tokens, to be overwritten by later ones.
        let padded = tokens + Array(repeating: 0, count: prefillLength - tokens.count)
        if let neuralEngine {
            // Writes the cache; its output (hidden_out) is not read.
            _ = try chain.run(neuralEngine.call(.prefill, position: position, tokens: prefillLength), ids: try tokenTensor(padded))
            return .none
        }
        let output = try chain.run(.prefill, input: try tokenTensor(padded), position: position)
        return try logitRows(output, tokens.count)
    }

    public func decode(token: Int32, position: Int) throws -> [Float] {
        let output: Chunk.Tensor
        if let neuralEngine {
            output = try chain.run(neuralEngine.call(.decode, position: position, tokens: 1), ids: try tokenTensor([token]))
        } else {
            output = try chain.run(.decode, input: try tokenTensor([token]), position: position)
        }
        return try logitRows(output, 1)[0]
    }

    /// Like prefill (padded to `verifyLength` with id 0, the padding's cache entries overwritten
    /// later), but every target gives logits for every row, ane included.
    public func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        guard verifyLength > 0 else { throw GenerationError.verifyUnsupported }
        precondition(!tokens.isEmpty && tokens.count <= verifyLength, "verify takes 1...\(verifyLength) tokens")
        let padded = tokens + Array(repeating: 0, count: verifyLength - tokens.count)
        let output: Chunk.Tensor
        if let neuralEngine {
            output = try chain.run(neuralEngine.call(.verify, position: position, tokens: verifyLength), ids: try tokenTensor(padded))
        } else {
            output = try chain.run(.verify, input: try tokenTensor(padded), position: position)
        }
        return try logitRows(output, tokens.count)
    }
}
