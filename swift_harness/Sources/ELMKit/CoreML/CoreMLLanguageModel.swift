#if canImport(CoreML)
import CoreML
#else
import CoreMLStandIn  // Apple's declarations, so this file is type-checked where Core ML is missing
#endif
import Foundation

/// An elm-export on Core ML, driven as export.json describes. Each package (one, or several for a
/// split export) is one `CoreMLChunk`; `ChunkedLanguageModel` runs them in order, so the chaining
/// that runs here is the one the Linux tests check with scripted chunks. An ane export (export.json's
/// `graph.target`) is driven through its embed functions with the rotary and mask inputs
/// `NeuralEngineInputs` computes; a gpu export as before.
/// With an adapter chosen (`FunctionNames`), every package runs the adapter's functions instead
/// of the base ones; the weights and the driving are the same.
@available(macOS 15.0, iOS 18.0, *)
public final class CoreMLLanguageModel: LanguageModel {
    public let manifest: ExportManifest
    public var contextLength: Int { manifest.contextLength }
    public var prefillLength: Int { manifest.prefillLength }
    public var vocabularySize: Int { manifest.vocabSize }
    /// False for an ane export: the prompt's last token is decoded for the logits.
    public var prefillGivesLogits: Bool { chained.prefillGivesLogits }
    /// export.json's `verify_length`; 0 when the export has no verify function.
    public var verifyLength: Int { chained.verifyLength }

    /// The functions each package runs: the base ones, or a LoRA adapter's.
    public let functionNames: FunctionNames
    /// The LoRA adapter this model runs with; nil for the base model.
    public var adapter: String? { functionNames.adapter }

    private let chained: ChunkedLanguageModel<CoreMLChunk>

    /// Loads the export folder (export.json + packages), compiling each package on first use.
    /// `adapter` names one of export.json's `adapters` to run with; nil runs the base model.
    public static func load(folder: URL, computeUnits: ComputeUnits = .cpuAndNeuralEngine,
                            adapter: String? = nil) async throws -> CoreMLLanguageModel {
        try await load(folder: folder, manifest: try ExportManifest.load(from: folder), computeUnits: computeUnits, adapter: adapter)
    }

    /// Loads the Core ML packages of an export folder whose export.json is already read.
    public static func load(folder: URL, manifest: ExportManifest, computeUnits: ComputeUnits = .cpuAndNeuralEngine,
                            adapter: String? = nil) async throws -> CoreMLLanguageModel {
        // Before compiling anything: an unknown adapter is a one-line error listing the export's.
        let names = try FunctionNames(manifest: manifest, adapter: adapter)
        guard manifest.formats.contains(.coreML) else {
            let held = manifest.formats.map(\.rawValue).joined(separator: ", ")
            throw ManifestError(source: folder.path, reason: "export.json lists no Core ML model (formats: \(held)); export the model again with coreml")
        }
        let missing = manifest.missingPackages(in: folder, format: .coreML)
        guard missing.isEmpty else {
            throw ManifestError(source: folder.path, reason: "\(missing.joined(separator: ", ")) named in export.json \(missing.count == 1 ? "is" : "are") missing; copy the whole export folder")
        }
        var compiled: [URL] = []
        for chunk in manifest.chunks {
            compiled.append(try await CompiledModelStore.compiledModel(in: folder, chunk: chunk))
        }
        return try CoreMLLanguageModel(compiledModels: compiled, manifest: manifest, computeUnits: computeUnits, functionNames: names)
    }

    /// `compiledModels[k]` is the compiled form of `manifest.chunks[k]`; `functionNames` says
    /// which functions of them run (`.base`, or `FunctionNames(manifest:adapter:)`).
    public init(compiledModels: [URL], manifest: ExportManifest, computeUnits: ComputeUnits,
                functionNames: FunctionNames = .base) throws {
        guard compiledModels.count == manifest.chunks.count else {
            throw ManifestError(source: ExportManifest.fileName, reason: "\(compiledModels.count) compiled models given for \(manifest.chunks.count) packages")
        }
        let chunks = try zip(compiledModels, manifest.chunks).map { url, spec in
            try CoreMLChunk(compiledModel: url, spec: spec, computeUnits: computeUnits, names: functionNames)
        }
        let vocabulary = manifest.vocabSize
        self.manifest = manifest
        self.functionNames = functionNames
        chained = try ChunkedLanguageModel(
            chunks: chunks, contextLength: manifest.contextLength, prefillLength: manifest.prefillLength,
            vocabularySize: vocabulary, tokenTensor: CoreMLLanguageModel.tokenTensor,
            logitRows: { try CoreMLLanguageModel.logitRows($0, count: $1, vocabulary: vocabulary) },
            neuralEngine: manifest.neuralEngineInputs, verifyLength: manifest.verifyLength ?? 0)
    }

    public func reset() throws { try chained.reset() }

    public func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        try chained.prefill(tokens: tokens, position: position)
    }

    public func decode(token: Int32, position: Int) throws -> [Float] {
        try chained.decode(token: token, position: position)
    }

    public func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        try chained.verify(tokens: tokens, position: position)
    }

    /// The first chunk's input_ids, int32 [1, T].
    static func tokenTensor(_ ids: [Int32]) throws -> MLMultiArray {
        let input = try MLMultiArray(shape: [1, NSNumber(value: ids.count)], dataType: .int32)
        input.withUnsafeMutableBufferPointer(ofType: Int32.self) { buffer, strides in
            for (i, id) in ids.enumerated() { buffer[i * strides[1]] = id }
        }
        return input
    }

    /// The first `count` rows of logits [1, T, pieces, pieceSize], read on demand.
    private static func logitRows(_ logits: MLMultiArray, count: Int, vocabulary: Int) throws -> LogitRows {
        guard logits.shape.count == 4, logits.shape[1].intValue >= count,
              logits.shape[2].intValue * logits.shape[3].intValue >= vocabulary
        else {
            throw GenerationError.modelOutput("logits shape \(logits.shape) does not match export.json")
        }
        return LogitRows(count: count) { row($0, of: logits, vocabulary: vocabulary) }
    }

    /// Row `t` of logits [1, T, pieces, pieceSize], flattened over the last two dimensions and cut
    /// to the vocabulary. Strides are honoured: Core ML may pad rows for the Neural Engine.
    private static func row(_ t: Int, of logits: MLMultiArray, vocabulary: Int) -> [Float] {
        let pieceSize = logits.shape[3].intValue
        let dataType = logits.dataType
        return logits.withUnsafeBytes { raw in
            // Read inside the closure: getting the buffer may re-lay the array out.
            let strides = logits.strides.map(\.intValue)
            var out = [Float](repeating: 0, count: vocabulary)
            for v in 0..<vocabulary {
                let offset = t * strides[1] + (v / pieceSize) * strides[2] + (v % pieceSize) * strides[3]
                switch dataType {
                case .float16: out[v] = HalfFloat.float(fromBits: raw.load(fromByteOffset: offset * 2, as: UInt16.self))
                case .float32: out[v] = raw.load(fromByteOffset: offset * 4, as: Float.self)
                case .double: out[v] = Float(raw.load(fromByteOffset: offset * 8, as: Double.self))
                default: out[v] = .nan
                }
            }
            return out
        }
    }
}

/// One package on Core ML: its "prefill" and "decode" functions (and "verify" when the export has
/// it) loaded as MLModels that share one MLState (prefill writes the cache that decode reads).
/// Each chunk of a split export has its own state, made from its own model, since its cache holds
/// only its own layers. The first chunk of an ane export also has the embed functions, stateless.
/// With an adapter, each of them is the adapter's function of the same name (`ChunkFunctions`).
@available(macOS 15.0, iOS 18.0, *)
final class CoreMLChunk: ModelChunk {
    let spec: ChunkSpec
    /// One MLModel per function the package has (embed functions: ane, first chunk only).
    private let models: ChunkFunctions<MLModel>

    init(compiledModel: URL, spec: ChunkSpec, computeUnits: ComputeUnits, names: FunctionNames = .base) throws {
        self.spec = spec
        models = try ChunkFunctions(spec: spec, names: names) { function in
            let configuration = MLModelConfiguration()
            configuration.computeUnits = computeUnits.mlComputeUnits
            configuration.functionName = function
            return try MLModel(contentsOf: compiledModel, configuration: configuration)
        }
    }

    func makeState() throws -> MLState {
        try models.body(.prefill).makeState()
    }

    /// `input` is input_ids (first chunk) or the previous chunk's hidden_out, passed on as Core ML
    /// gave it (float16, whatever its strides), with no copy.
    func predict(_ function: ModelFunction, input: MLMultiArray, position: Int, state: MLState) throws -> MLMultiArray {
        let features = try MLDictionaryFeatureProvider(dictionary: [
            spec.input: MLFeatureValue(multiArray: input),
            ChunkSpec.position: MLFeatureValue(multiArray: try Self.positionArray(position)),
        ])
        let output = try models.body(function).prediction(from: features, using: state, options: MLPredictionOptions())
        return try tensor(spec.output, of: output)
    }

    /// ane: input_ids [1, T] → hidden_out [1, T, model_dim] by the embed function (no state).
    func embed(_ call: NeuralEngineCall, ids: MLMultiArray) throws -> MLMultiArray {
        let features = try MLDictionaryFeatureProvider(dictionary: [ChunkSpec.inputIDs: MLFeatureValue(multiArray: ids)])
        return try tensor(ChunkSpec.hiddenOut, of: try models.embed(call.function).prediction(from: features, options: MLPredictionOptions()))
    }

    /// ane: the body function on hidden_in with the call's position, rotary and mask. The last
    /// chunk's prefill gives hidden_out (no logits), returned for the chain to drop.
    func predict(_ call: NeuralEngineCall, input: MLMultiArray, state: MLState) throws -> MLMultiArray {
        let features = try MLDictionaryFeatureProvider(dictionary: [
            spec.input: MLFeatureValue(multiArray: input),
            ChunkSpec.position: MLFeatureValue(multiArray: try Self.positionArray(call.position)),
            ChunkSpec.rotary: MLFeatureValue(multiArray: try Self.float16Array(call.rotary, shape: call.rotaryShape)),
            ChunkSpec.mask: MLFeatureValue(multiArray: try Self.float16Array(call.mask, shape: call.maskShape)),
        ])
        let output = try models.body(call.function).prediction(from: features, using: state, options: MLPredictionOptions())
        return try tensor(spec.outputName(of: call.function), of: output)
    }

    private func tensor(_ name: String, of output: any MLFeatureProvider) throws -> MLMultiArray {
        guard let tensor = output.featureValue(for: name)?.multiArrayValue else {
            throw GenerationError.modelOutput("\(spec.package) gave no '\(name)' output")
        }
        return tensor
    }

    private static func positionArray(_ position: Int) throws -> MLMultiArray {
        let array = try MLMultiArray(shape: [1], dataType: .int32)
        array[0] = NSNumber(value: Int32(position))
        return array
    }

    /// A float16 array of `shape` holding `bits` (row-major), written through the array's strides.
    /// Raw bytes, since `Float16` does not exist on Intel Macs.
    static func float16Array(_ bits: [UInt16], shape: [Int]) throws -> MLMultiArray {
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float16)
        array.withUnsafeMutableBytes { raw, strides in
            var index = 0
            var element = [Int](repeating: 0, count: shape.count)
            while index < bits.count {
                var offset = 0
                for axis in shape.indices { offset += element[axis] * strides[axis] }
                raw.storeBytes(of: bits[index], toByteOffset: offset * 2, as: UInt16.self)
                index += 1
                // Next element in row-major order.
                var axis = shape.count - 1
                while axis >= 0 {
                    element[axis] += 1
                    if element[axis] < shape[axis] { break }
                    element[axis] = 0
                    axis -= 1
                }
            }
        }
        return array
    }
}
