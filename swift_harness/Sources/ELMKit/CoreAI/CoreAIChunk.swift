#if canImport(CoreAI)
import CoreAI
#elseif !canImport(CoreML)
import CoreAIStandIn  // Apple's declarations, so this file is type-checked where Core AI is missing
#endif
import Foundation

#if (canImport(CoreAI) && arch(arm64)) || !canImport(CoreML)

/// One .aimodel on Core AI: its "prefill" and "decode" functions, which read and write one shared
/// cache (`CoreAIKVCache`). Each chunk of a split export has its own cache, made from its own
/// function's descriptor, since it holds only its own layers.
@available(macOS 27.0, iOS 27.0, *)
final class CoreAIChunk: ModelChunk {
    let spec: ChunkSpec
    private let prefillFunction: InferenceFunction
    private let decodeFunction: InferenceFunction

    init(model: AIModel, spec: ChunkSpec) throws {
        func load(_ function: ModelFunction) throws -> InferenceFunction {
            guard let loaded = try model.loadFunction(named: function.rawValue) else {
                let names = model.functionNames.sorted().joined(separator: ", ")
                throw ManifestError(source: spec.package, reason: "has no '\(function.rawValue)' function (it has: \(names)); export the model again")
            }
            return loaded
        }
        self.spec = spec
        prefillFunction = try load(.prefill)
        decodeFunction = try load(.decode)
    }

    /// A fresh, empty cache. Both functions declare the same states, so prefill's descriptor serves.
    func makeState() throws -> CoreAIKVCache {
        try CoreAIKVCache(prefillFunction.descriptor, spec: spec)
    }

    /// `input` is input_ids (first chunk) or the previous chunk's hidden_out, passed on as is.
    func predict(_ function: ModelFunction, input: NDArray, position: Int, state: CoreAIKVCache) throws -> NDArray {
        let inferenceFunction = function == .prefill ? prefillFunction : decodeFunction
        guard let output = spec.function(function).output(spec.output) else {
            throw GenerationError.modelOutput("\(spec.package) has no '\(spec.output)' output in export.json")
        }
        let outputType = try Self.scalarType(output)
        // Not Sendable, but only the task below touches them while this thread waits for it.
        nonisolated(unsafe) let inputs = [
            spec.input: input,
            ChunkSpec.position: CoreAILanguageModel.int32Array([Int32(position)], shape: [1]),
        ]
        return try BlockingAsync.run {
            try await state.run(inferenceFunction, inputs: inputs, output: output.name, shape: output.shape, scalarType: outputType)
        }
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
