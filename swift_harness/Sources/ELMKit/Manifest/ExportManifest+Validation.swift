/// Cross-field checks, so a mismatched manifest fails here rather than inside Core ML or Core AI.
extension ExportManifest {
    /// `coreMLPaths[i]` is where Core ML chunk i was read ("chunks[1]." or "" for the top level).
    func validate(source: String, coreMLPaths: [String]) throws {
        let fail = { (reason: String) in ManifestError(source: source, reason: reason) }
        guard contextLength > 0, prefillLength > 0, vocabSize > 0 else {
            throw fail("context_length, prefill_length and vocab_size must be positive")
        }
        guard prefillLength <= contextLength else {
            throw fail("prefill_length \(prefillLength) is larger than context_length \(contextLength)")
        }
        guard logitsPieces > 0, logitsPieceSize > 0, logitsPieces * logitsPieceSize >= vocabSize else {
            throw fail("logits_layout (\(logitsPieces) pieces × \(logitsPieceSize)) does not cover vocab_size \(vocabSize)")
        }
        if graph.target == .ane {
            guard let headDim, headDim > 0, headDim % 2 == 0, let ropeFreqConstant, ropeFreqConstant > 0 else {
                throw fail("graph.target is 'ane' but model.head_dim (positive, even) or model.rope_freq_constant is missing; the caller needs them for the rotary input; export the model again")
            }
        }
        try validateVerifyLength(fail: fail)
        if formats.contains(.coreML) {
            guard !chunks.isEmpty else { throw fail("chunks is empty but formats lists 'coreml'; export the model again") }
            try validateChain(chunks, paths: coreMLPaths, fail: fail)
        }
        if let coreAI {
            guard !coreAI.chunks.isEmpty else { throw fail("coreai.chunks is empty but formats lists 'coreai'; export the model again") }
            let paths = coreAI.chunks.indices.map { "coreai.chunks[\($0)]." }
            try validateChain(coreAI.chunks, paths: paths, fail: fail)
            for (chunk, path) in zip(coreAI.chunks, paths) { try validateCoreAIChunk(chunk, path: path, fail: fail) }
        }
    }

    /// One format's chunks chain up: ids into the first, logits out of the last, matching hidden
    /// states between them, contiguous layers covering the model.
    private func validateChain(_ chunks: [ChunkSpec], paths: [String], fail: (String) -> ManifestError) throws {
        for (i, chunk) in chunks.enumerated() {
            let path = paths[i]
            let isFirst = i == 0, isLast = i == chunks.count - 1
            if graph.target == .ane {
                guard chunk.input == ChunkSpec.hiddenIn else {
                    throw fail("\(path)input is '\(chunk.input)', expected '\(ChunkSpec.hiddenIn)': every body function of the Neural Engine graph takes the hidden state (the first chunk's embed functions take the ids)")
                }
                if isFirst { try validateEmbed(chunk, path: path, fail: fail) }
            } else {
                let wantedInput = isFirst ? ChunkSpec.inputIDs : ChunkSpec.hiddenIn
                guard chunk.input == wantedInput else {
                    throw fail("\(path)input is '\(chunk.input)', expected '\(wantedInput)': the first chunk takes the token ids, each later one the hidden state of the chunk before it")
                }
            }
            let wantedOutput = isLast ? ChunkSpec.logits : ChunkSpec.hiddenOut
            guard chunk.output == wantedOutput else {
                throw fail("\(path)output is '\(chunk.output)', expected '\(wantedOutput)': the last chunk gives the logits, each earlier one the hidden state for the chunk after it")
            }
            try validateLayers(chunks, i, path: path, fail: fail)
            for function in chunkFunctions {
                guard chunk.function(function) != nil else {
                    throw fail("\(path)functions.\(function.rawValue) is missing, but the export has a verify function (graph.functions or another package lists it): every package needs it; export the model again")
                }
                let previous = isFirst ? nil : (chunks[i - 1], paths[i - 1])
                try validateFunction(function, of: chunk, path: path, previous: previous, isLast: isLast, fail: fail)
            }
        }
    }

    /// The inputs and outputs of one function of one chunk. `previous` is the chunk before it
    /// (already checked) and where it was read, nil for the first chunk.
    private func validateFunction(_ function: ModelFunction, of chunk: ChunkSpec, path: String, previous: (ChunkSpec, String)?,
                                  isLast: Bool, fail: (String) -> ManifestError) throws {
        let tokens = callLength(function)
        let spec = chunk.function(function)!  // checked by the caller
        let at = "\(path)functions.\(function.rawValue)"
        guard let input = spec.input(chunk.input) else { throw fail("\(at) has no '\(chunk.input)' input") }
        if graph.target == .ane, previous == nil {
            // The hand-off from the embed function (checked before).
            let given = chunk.embed(function)!.output(ChunkSpec.hiddenOut)!
            guard input.shape == given.shape, input.dtype == given.dtype else {
                throw fail("\(at).hidden_in is \(input.dtype) \(input.shape) but \(path)functions.\(ChunkSpec.embedFunctionName(function)).hidden_out is \(given.dtype) \(given.shape); the functions do not fit together")
            }
        } else if let (before, beforePath) = previous {
            // The hand-off: exactly what the chunk before gives.
            let given = before.function(function)!.output(ChunkSpec.hiddenOut)!
            guard input.shape == given.shape, input.dtype == given.dtype else {
                throw fail("\(at).hidden_in is \(input.dtype) \(input.shape) but \(beforePath)functions.\(function.rawValue).hidden_out is \(given.dtype) \(given.shape); the chunks do not fit together")
            }
        } else {
            guard input.shape == [1, tokens] else { throw fail("\(at).input_ids has shape \(input.shape), expected [1, \(tokens)]") }
            guard input.dtype == "int32" else { throw fail("\(at).input_ids is \(input.dtype), expected int32") }
        }
        guard let position = spec.input(ChunkSpec.position) else { throw fail("\(at) has no 'position' input") }
        guard position.dtype == "int32" else { throw fail("\(at).position is \(position.dtype), expected int32") }
        if graph.target == .ane { try validateCallerInputs(spec, at: at, tokens: tokens, fail: fail) }
        // The ane target's prefill gives no logits: the last chunk's gives hidden_out, never read.
        let outputName = graph.target == .ane && function == .prefill ? ChunkSpec.hiddenOut : chunk.output
        guard let output = spec.output(outputName) else { throw fail("\(at) has no '\(outputName)' output") }
        if isLast && outputName == ChunkSpec.logits {
            guard output.shape == [1, tokens, logitsPieces, logitsPieceSize] else {
                throw fail("\(at).logits has shape \(output.shape), expected [1, \(tokens), \(logitsPieces), \(logitsPieceSize)] from logits_layout")
            }
        } else {
            guard output.shape.count == 3, output.shape[0] == 1, output.shape[1] == tokens, output.shape[2] > 0 else {
                throw fail("\(at).hidden_out has shape \(output.shape), expected [1, \(tokens), model_dim]")
            }
        }
    }

    /// The functions every package must have: prefill and decode, and verify when any package or
    /// the graph has it.
    private var chunkFunctions: [ModelFunction] {
        let anyVerify = graph.listsVerify || formats.flatMap { chunks(for: $0) }.contains { $0.verify != nil }
        return ModelFunction.required + (anyVerify ? [.verify] : [])
    }

    /// Tokens one call of `function` takes (T of its [1, T] inputs).
    private func callLength(_ function: ModelFunction) -> Int {
        switch function {
        case .prefill: return prefillLength
        case .decode: return 1
        case .verify: return declaredVerifyLength ?? 0
        }
    }

    /// A verify call takes the newest token and at least one draft, and fits in the context.
    private func validateVerifyLength(fail: (String) -> ManifestError) throws {
        if let length = declaredVerifyLength, !(2...contextLength).contains(length) {
            throw fail("verify_length is \(length); a verify call takes from 2 tokens (the newest one and a draft) up to context_length \(contextLength)")
        }
        if chunkFunctions.contains(.verify), declaredVerifyLength == nil {
            throw fail("the export has a verify function but no verify_length (tokens per verify call); export the model again")
        }
    }

    /// The ane target's first chunk: embed_prefill, embed_decode (and embed_verify with verify),
    /// input_ids [1, T] int32 → hidden_out [1, T, model_dim].
    private func validateEmbed(_ chunk: ChunkSpec, path: String, fail: (String) -> ManifestError) throws {
        for function in chunkFunctions {
            let tokens = callLength(function)
            let at = "\(path)functions.\(ChunkSpec.embedFunctionName(function))"
            guard let spec = chunk.embed(function) else {
                throw fail("\(at) is missing: the first chunk of a Neural Engine (ane) export looks the token ids up with it; export the model again")
            }
            guard let ids = spec.input(ChunkSpec.inputIDs), ids.shape == [1, tokens], ids.dtype == "int32" else {
                throw fail("\(at) should take input_ids int32 [1, \(tokens)]")
            }
            guard let hidden = spec.output(ChunkSpec.hiddenOut), hidden.shape.count == 3, hidden.shape[0] == 1,
                  hidden.shape[1] == tokens, hidden.shape[2] > 0 else {
                throw fail("\(at) should give hidden_out [1, \(tokens), model_dim]")
            }
        }
    }

    /// The ane target's body inputs the caller computes: rotary [1, T, 2 * head_dim] and mask [1, T, context_length], float16.
    private func validateCallerInputs(_ spec: FunctionSpec, at: String, tokens: Int, fail: (String) -> ManifestError) throws {
        let wanted = [(ChunkSpec.rotary, [1, tokens, 2 * (headDim ?? 0)]), (ChunkSpec.mask, [1, tokens, contextLength])]
        for (name, shape) in wanted {
            guard let input = spec.input(name) else { throw fail("\(at) has no '\(name)' input") }
            guard input.shape == shape, input.dtype == "float16" else {
                throw fail("\(at).\(name) is \(input.dtype) \(input.shape), expected float16 \(shape)")
            }
        }
    }

    /// Chunk i's layers start where chunk i-1's stop (the first at 0) and the last stops at the layer count.
    private func validateLayers(_ chunks: [ChunkSpec], _ i: Int, path: String, fail: (String) -> ManifestError) throws {
        guard let layers = chunks[i].layers else { return }
        if i == 0 {
            guard layers.lowerBound == 0 else {
                throw fail("\(path)layers start at \(layers.lowerBound); the first chunk must start at layer 0")
            }
        } else if let previous = chunks[i - 1].layers, layers.lowerBound != previous.upperBound {
            throw fail("\(path)layers [\(layers.lowerBound), \(layers.upperBound)] do not continue the chunk before it, [\(previous.lowerBound), \(previous.upperBound)]: each chunk must start at the layer where the one before stops")
        }
        if i == chunks.count - 1, let layerCount, layers.upperBound != layerCount {
            throw fail("\(path)layers stop at \(layers.upperBound) but the model has \(layerCount) layers; the chunks must cover them all")
        }
    }

    /// What the Core AI runner relies on beyond the shared schema: an .aimodel folder, and the two
    /// cache states it binds by name.
    private func validateCoreAIChunk(_ chunk: ChunkSpec, path: String, fail: (String) -> ManifestError) throws {
        guard chunk.package.hasSuffix("." + ExportFormat.coreAI.packageExtension) else {
            throw fail("\(path)package '\(chunk.package)' should name a .aimodel folder")
        }
        let stateNames = chunk.states.map(\.name).sorted()
        guard stateNames == [ChunkSpec.keyCache, ChunkSpec.valueCache] else {
            throw fail("\(path)states are \(stateNames), expected '\(ChunkSpec.keyCache)' and '\(ChunkSpec.valueCache)'")
        }
    }
}
