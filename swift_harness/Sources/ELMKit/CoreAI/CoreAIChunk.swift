#if canImport(CoreAI)
import CoreAI
#elseif !canImport(CoreML)
import CoreAIStandIn  // Apple's declarations, so this file is type-checked where Core AI is missing
#endif
import Foundation

#if (canImport(CoreAI) && arch(arm64)) || !canImport(CoreML)

/// One .aimodel on Core AI: its "prefill" and "decode" functions (and "verify" when the export has
/// it), which read and write one shared cache (`CoreAIKVCache`). Each chunk of a split export has
/// its own cache, made from its own function's descriptor, since it holds only its own layers. The
/// first chunk of an ane export also has the embed functions, stateless. With an adapter, each of
/// them is the adapter's function of the same name (`ChunkFunctions`).
@available(macOS 27.0, iOS 27.0, *)
final class CoreAIChunk: ModelChunk {
    let spec: ChunkSpec
    /// One loaded function per function the package has (embed functions: ane, first chunk only).
    private let functions: ChunkFunctions<InferenceFunction>

    init(model: AIModel, spec: ChunkSpec, names: FunctionNames = .base) throws {
        self.spec = spec
        functions = try ChunkFunctions(spec: spec, names: names) { function in
            guard let loaded = try model.loadFunction(named: function) else {
                let names = model.functionNames.sorted().joined(separator: ", ")
                throw ManifestError(source: spec.package, reason: "has no '\(function)' function (it has: \(names)); export the model again")
            }
            return loaded
        }
    }

    /// A fresh, empty cache. Every function declares the same states, so prefill's descriptor serves.
    func makeState() throws -> CoreAIKVCache {
        try CoreAIKVCache(try functions.body(.prefill).descriptor, spec: spec)
    }

    /// `input` is input_ids (first chunk) or the previous chunk's hidden_out, passed on as is.
    func predict(_ function: ModelFunction, input: NDArray, position: Int, state: CoreAIKVCache) throws -> NDArray {
        try run(function, inputs: [
            spec.input: input,
            ChunkSpec.position: CoreAILanguageModel.int32Array([Int32(position)], shape: [1]),
        ], state: state)
    }

    /// ane: input_ids [1, T] → hidden_out [1, T, model_dim] by the embed function (no state).
    func embed(_ call: NeuralEngineCall, ids: NDArray) throws -> NDArray {
        let function = try functions.embed(call.function)
        guard let output = spec.embed(call.function)?.output(ChunkSpec.hiddenOut) else {
            throw GenerationError.modelOutput("\(spec.package) has no '\(call.embedFunction)' function in export.json; export the model again")
        }
        let outputType = try Self.scalarType(output)
        nonisolated(unsafe) let inputs = [ChunkSpec.inputIDs: ids]
        return try BlockingAsync.run {
            var result = NDArray(shape: output.shape, scalarType: outputType)
            var outputViews = InferenceFunction.MutableViews()
            outputViews.insert(&result, for: output.name)
            _ = try await function.run(inputs: inputs, outputViews: consume outputViews)
            return result
        }
    }

    /// ane: the body function on hidden_in with the call's position, rotary and mask. The last
    /// chunk's prefill gives hidden_out (no logits), returned for the chain to drop.
    func predict(_ call: NeuralEngineCall, input: NDArray, state: CoreAIKVCache) throws -> NDArray {
        try run(call.function, inputs: [
            spec.input: input,
            ChunkSpec.position: CoreAILanguageModel.int32Array([Int32(call.position)], shape: [1]),
            ChunkSpec.rotary: Self.float16Array(call.rotary, shape: call.rotaryShape),
            ChunkSpec.mask: Self.float16Array(call.mask, shape: call.maskShape),
        ], state: state)
    }

    private func run(_ function: ModelFunction, inputs: [String: NDArray], state: CoreAIKVCache) throws -> NDArray {
        let inferenceFunction = try functions.body(function)
        let name = spec.outputName(of: function)
        guard let output = spec.function(function)?.output(name) else {
            throw GenerationError.modelOutput("\(spec.package) has no '\(name)' output in export.json")
        }
        let outputType = try Self.scalarType(output)
        // Not Sendable, but only the task below touches them while this thread waits for it.
        nonisolated(unsafe) let inputs = inputs
        return try BlockingAsync.run {
            try await state.run(inferenceFunction, inputs: inputs, output: output.name, shape: output.shape, scalarType: outputType)
        }
    }

    /// A float16 array of `shape` holding `bits` in order (arrays made from a shape are contiguous, row-major).
    static func float16Array(_ bits: [UInt16], shape: [Int]) -> NDArray {
        var array = NDArray(shape: shape, scalarType: .float16)
        let view = array.mutableView(as: Float16.self)
        view.withUnsafeMutablePointer { base, _, _ in
            for (i, value) in bits.enumerated() { base[i] = Float16(bitPattern: value) }
        }
        return array
    }

    private static func scalarType(_ tensor: TensorSpec) throws -> NDArray.ScalarType {
        switch tensor.dtype {
        case "float16": return .float16
        case "float32": return .float32
        default: throw GenerationError.modelOutput("output '\(tensor.name)' is \(tensor.dtype); Core AI chunks give float16 or float32")
        }
    }
}

/// One chunk's KV cache on Core AI: the "key_cache" and "value_cache" arrays its prefill and
/// decode functions update in place, kept across calls until the chain is reset. A class, so each
/// array has a single owner and is updated where it is, never copied on write.
///
/// `@unchecked Sendable`: calls on a cache never overlap. `Generator` makes one model call at a
/// time, and `CoreAIChunk.predict` waits for each run to finish before returning.
@available(macOS 27.0, iOS 27.0, *)
final class CoreAIKVCache: @unchecked Sendable {
    private var keyCache: NDArray
    private var valueCache: NDArray

    init(_ descriptor: InferenceFunctionDescriptor, spec: ChunkSpec) throws {
        keyCache = try Self.emptyState(ChunkSpec.keyCache, descriptor, spec: spec)
        valueCache = try Self.emptyState(ChunkSpec.valueCache, descriptor, spec: spec)
    }

    /// Runs `function` on this cache and returns its output `name`, written into a fresh contiguous
    /// array of `shape` (fresh, because the caller reads it after this returns, and a split
    /// export's next chunk takes it as input).
    func run(_ function: InferenceFunction, inputs: [String: NDArray], output name: String, shape: [Int],
             scalarType: NDArray.ScalarType) async throws -> NDArray {
        var output = NDArray(shape: shape, scalarType: scalarType)
        var states = InferenceFunction.MutableViews()
        states.insert(&keyCache, for: ChunkSpec.keyCache)
        states.insert(&valueCache, for: ChunkSpec.valueCache)
        var outputViews = InferenceFunction.MutableViews()
        outputViews.insert(&output, for: name)
        _ = try await function.run(inputs: inputs, states: consume states, outputViews: consume outputViews)
        return output
    }

    /// State `name` laid out as the function prefers, all zeros: an empty cache, as a fresh Core ML
    /// state is. Checked against export.json, so a package from another export fails here.
    private static func emptyState(_ name: String, _ descriptor: InferenceFunctionDescriptor, spec: ChunkSpec) throws -> NDArray {
        guard case .ndArray(let layout) = descriptor.stateDescriptor(of: name) else {
            throw ManifestError(source: spec.package, reason: "has no '\(name)' state (its states: \(descriptor.stateNames)); export the model again")
        }
        let listed = spec.states.first { $0.name == name }
        guard layout.scalarType == .float16, listed == nil || listed?.shape == layout.shape else {
            let expected = listed.map { "\($0.dtype) \($0.shape)" } ?? "float16"
            throw ManifestError(source: spec.package, reason: "state '\(name)' is \(layout.scalarType) \(layout.shape) but export.json says \(expected); export the model again")
        }
        // Every element the layout occupies, padding included.
        let elements = layout.minimumByteCount / MemoryLayout<Float16>.size
        var state = NDArray(descriptor: layout)
        let view = state.mutableView(as: Float16.self)
        view.withUnsafeMutablePointer { base, _, _ in base.update(repeating: 0, count: elements) }
        return state
    }
}
#endif
