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
}

/// A `LanguageModel` over a chain of chunks (one chunk for an unsplit export): pads prefill calls
/// to `prefillLength`, runs the chain, and reads the logits rows of the real tokens. The tensor
/// conversions at the two ends are given by the backend.
public final class ChunkedLanguageModel<Chunk: ModelChunk>: LanguageModel {
    public let contextLength: Int
    public let prefillLength: Int
    public let vocabularySize: Int
    public let chain: ChunkChain<Chunk>
    private let tokenTensor: ([Int32]) throws -> Chunk.Tensor
    private let logitRows: (Chunk.Tensor, Int) throws -> LogitRows

    /// - Parameters:
    ///   - tokenTensor: the first chunk's input for these token ids ([1, T]).
    ///   - logitRows: the first `count` rows of the last chunk's output, cut to the vocabulary.
    public init(chunks: [Chunk], contextLength: Int, prefillLength: Int, vocabularySize: Int,
                tokenTensor: @escaping ([Int32]) throws -> Chunk.Tensor,
                logitRows: @escaping (_ output: Chunk.Tensor, _ count: Int) throws -> LogitRows) throws {
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
        let output = try chain.run(.prefill, input: try tokenTensor(padded), position: position)
        return try logitRows(output, tokens.count)
    }

    public func decode(token: Int32, position: Int) throws -> [Float] {
        let output = try chain.run(.decode, input: try tokenTensor([token]), position: position)
        return try logitRows(output, 1)[0]
    }
}
