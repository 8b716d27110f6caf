#if canImport(CoreAI)
import CoreAI
#elseif !canImport(CoreML)
import CoreAIStandIn  // Apple's declarations, so this file is type-checked where Core AI is missing
#endif
import Foundation

// Compiled where the SDK has Core AI, on Apple silicon (Core AI's hardware, and where Float16
// exists), and on Linux against CoreAIStandIn. Left out on Apple SDKs that predate Core AI.
#if (canImport(CoreAI) && arch(arm64)) || !canImport(CoreML)

/// An elm-export on Core AI, driven as export.json's `coreai` section describes. Each .aimodel
/// (one, or several for a split export) is one `CoreAIChunk`; `ChunkedLanguageModel` runs them in
/// order, exactly as for Core ML, so the chaining is the one the Linux tests check. An ane export
/// (export.json's `graph.target`) is driven through its embed functions with the rotary and mask
/// inputs `NeuralEngineInputs` computes; a gpu export as before.
///
/// With an adapter chosen (`FunctionNames`), every .aimodel runs the adapter's functions instead of
/// the base ones; the weights and the driving are the same.
///
/// Its calls block until Core AI's async `run` returns (see `BlockingAsync`): drive it through
/// `Generator.stream`, or otherwise off Swift's cooperative threads.
@available(macOS 27.0, iOS 27.0, *)
public final class CoreAILanguageModel: LanguageModel {
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

    private let chained: ChunkedLanguageModel<CoreAIChunk>

    /// Loads the export folder (export.json + .aimodel folders). `adapter` names one of
    /// export.json's `adapters` to run with; nil runs the base model.
    public static func load(folder: URL, computeUnits: ComputeUnits = .cpuAndNeuralEngine,
                            adapter: String? = nil) async throws -> CoreAILanguageModel {
        try await load(folder: folder, manifest: try ExportManifest.load(from: folder), computeUnits: computeUnits, adapter: adapter)
    }

    /// Loads each chunk's .aimodel (or the .aimodelc compiled from it). The first load on a device
    /// specializes the model, which takes a while; Core AI caches the result for later launches.
    public static func load(folder: URL, manifest: ExportManifest, computeUnits: ComputeUnits = .cpuAndNeuralEngine,
                            adapter: String? = nil) async throws -> CoreAILanguageModel {
        // Before the slow loads: an unknown adapter is a one-line error listing the export's.
        let names = try FunctionNames(manifest: manifest, adapter: adapter)
        guard manifest.coreAI != nil else {
            let held = manifest.formats.map(\.rawValue).joined(separator: ", ")
            throw ManifestError(source: folder.path, reason: "export.json lists no Core AI model (formats: \(held)); export the model again with elm-export --format coreai (or both)")
        }
        let missing = manifest.missingPackages(in: folder, format: .coreAI)
        guard missing.isEmpty else {
            throw ManifestError(source: folder.path, reason: "\(missing.joined(separator: ", ")) named in export.json \(missing.count == 1 ? "is" : "are") missing; copy the whole export folder")
        }
        var models: [AIModel] = []
        for chunk in manifest.chunks(for: .coreAI) {
            let url = ExportManifest.packageURL(chunk.package, in: folder, format: .coreAI)
            models.append(try await AIModel(contentsOf: url, options: computeUnits.specializationOptions))
        }
        return try CoreAILanguageModel(models: models, manifest: manifest, functionNames: names)
    }

    /// `models[k]` is the loaded form of `manifest.coreAI.chunks[k]`; `functionNames` says which
    /// functions of them run (`.base`, or `FunctionNames(manifest:adapter:)`).
    public init(models: [AIModel], manifest: ExportManifest, functionNames: FunctionNames = .base) throws {
        let specs = manifest.chunks(for: .coreAI)
        guard !specs.isEmpty, models.count == specs.count else {
            throw ManifestError(source: ExportManifest.fileName, reason: "\(models.count) Core AI models given for \(specs.count) packages")
        }
        let chunks = try zip(models, specs).map { model, spec in try CoreAIChunk(model: model, spec: spec, names: functionNames) }
        let vocabulary = manifest.vocabSize
        self.manifest = manifest
        self.functionNames = functionNames
        chained = try ChunkedLanguageModel(
            chunks: chunks, contextLength: manifest.contextLength, prefillLength: manifest.prefillLength,
            vocabularySize: vocabulary, tokenTensor: { Self.int32Array($0, shape: [1, $0.count]) },
            logitRows: { try Self.logitRows($0, count: $1, vocabulary: vocabulary) },
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

    /// An int32 array of `shape` holding `values` (input_ids [1, T], position [1]). Arrays made
    /// from a shape are contiguous and row-major, so the values go in order.
    static func int32Array(_ values: [Int32], shape: [Int]) -> NDArray {
        var array = NDArray(shape: shape, scalarType: .int32)
        let view = array.mutableView(as: Int32.self)
        view.withUnsafeMutablePointer { base, _, _ in
            for (i, value) in values.enumerated() { base[i] = value }
        }
        return array
    }

    /// The first `count` rows of logits [1, T, pieces, pieceSize], read on demand.
    private static func logitRows(_ logits: NDArray, count: Int, vocabulary: Int) throws -> LogitRows {
        let shape = logits.shape
        guard shape.count == 4, shape[1] >= count, shape[2] * shape[3] >= vocabulary,
              logits.scalarType == .float16 || logits.scalarType == .float32
        else {
            throw GenerationError.modelOutput("logits \(logits.scalarType) \(shape) do not match export.json")
        }
        return LogitRows(count: count) { row($0, of: logits, vocabulary: vocabulary) }
    }

    /// Row `t` of logits, flattened over the last two dimensions and cut to the vocabulary.
    private static func row(_ t: Int, of logits: NDArray, vocabulary: Int) -> [Float] {
        if logits.scalarType == .float32 {
            return logits.view(as: Float.self).withUnsafePointer { base, shape, strides in
                gather(row: t, base, shape, strides, vocabulary: vocabulary) { $0 }
            }
        }
        return logits.view(as: Float16.self).withUnsafePointer { base, shape, strides in
            gather(row: t, base, shape, strides, vocabulary: vocabulary) { Float($0) }
        }
    }

    /// Strides are honoured (in elements), whatever layout the array has.
    private static func gather<Element>(row t: Int, _ base: UnsafePointer<Element>, _ shape: Span<Int>, _ strides: Span<Int>,
                                        vocabulary: Int, _ toFloat: (Element) -> Float) -> [Float] {
        let pieceSize = shape[3]
        var out = [Float](repeating: 0, count: vocabulary)
        for v in 0..<vocabulary {
            out[v] = toFloat(base[t * strides[1] + (v / pieceSize) * strides[2] + (v % pieceSize) * strides[3]])
        }
        return out
    }
}

@available(macOS 27.0, iOS 27.0, *)
extension ComputeUnits {
    /// Core AI prefers one kind of compute unit and falls back to the others for what it cannot
    /// run; only CPU-only is a hard limit. So Core ML's sets map to their main unit.
    var specializationOptions: SpecializationOptions {
        switch self {
        case .all: return .default
        case .cpuAndNeuralEngine: return SpecializationOptions(preferredComputeUnitKind: .neuralEngine)
        case .cpuAndGPU: return SpecializationOptions(preferredComputeUnitKind: .gpu)
        case .cpuOnly: return .cpuOnly
        }
    }
}
#endif
