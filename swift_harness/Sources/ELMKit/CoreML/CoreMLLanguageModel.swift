#if canImport(CoreML)
import CoreML
import Foundation

/// An elm-export package on Core ML: the multifunction model's "prefill" and "decode" functions
/// loaded as two MLModels that share one MLState (the KV cache), driven as export.json describes.
@available(macOS 15.0, iOS 18.0, *)
public final class CoreMLLanguageModel: LanguageModel {
    public let manifest: ExportManifest
    public var contextLength: Int { manifest.contextLength }
    public var prefillLength: Int { manifest.prefillLength }
    public var vocabularySize: Int { manifest.vocabSize }

    private let prefillModel: MLModel
    private let decodeModel: MLModel
    private var state: MLState

    /// Loads the export folder (export.json + package), compiling the package on first use.
    public static func load(folder: URL, computeUnits: ComputeUnits = .cpuAndNeuralEngine) async throws -> CoreMLLanguageModel {
        let manifest = try ExportManifest.load(from: folder)
        let compiled = try await CompiledModelStore.compiledModel(in: folder, manifest: manifest)
        return try CoreMLLanguageModel(compiledModel: compiled, manifest: manifest, computeUnits: computeUnits)
    }

    public init(compiledModel: URL, manifest: ExportManifest, computeUnits: ComputeUnits) throws {
        for (name, function) in [("prefill", manifest.prefill), ("decode", manifest.decode)] {
            for input in ["input_ids", "position"] where function.input(input)?.dtype != "int32" {
                throw ManifestError(source: ExportManifest.fileName, reason: "functions.\(name).\(input) must be int32")
            }
        }
        func load(_ function: String) throws -> MLModel {
            let configuration = MLModelConfiguration()
            configuration.computeUnits = computeUnits.mlComputeUnits
            configuration.functionName = function
            return try MLModel(contentsOf: compiledModel, configuration: configuration)
        }
        self.manifest = manifest
        prefillModel = try load("prefill")
        decodeModel = try load("decode")
        // One state for both functions: prefill writes the cache that decode reads.
        state = prefillModel.makeState()
    }

    public func reset() throws {
        state = prefillModel.makeState()
    }

    public func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        precondition(!tokens.isEmpty && tokens.count <= prefillLength, "prefill takes 1...\(prefillLength) tokens")
        // Pad to the fixed chunk length; the padding's logits are never read and its cache
        // entries sit beyond the real tokens, to be overwritten by later ones.
        let padded = tokens + Array(repeating: 0, count: prefillLength - tokens.count)
        let logits = try run(prefillModel, ids: padded, position: position)
        return LogitRows(count: tokens.count) { [self] row in self.row(row, of: logits) }
    }

    public func decode(token: Int32, position: Int) throws -> [Float] {
        row(0, of: try run(decodeModel, ids: [token], position: position))
    }

    private func run(_ model: MLModel, ids: [Int32], position: Int) throws -> MLMultiArray {
        let input = try MLMultiArray(shape: [1, NSNumber(value: ids.count)], dataType: .int32)
        input.withUnsafeMutableBufferPointer(ofType: Int32.self) { buffer, strides in
            for (i, id) in ids.enumerated() { buffer[i * strides[1]] = id }
        }
        let positionArray = try MLMultiArray(shape: [1], dataType: .int32)
        positionArray[0] = NSNumber(value: Int32(position))
        let features = try MLDictionaryFeatureProvider(dictionary: [
            "input_ids": MLFeatureValue(multiArray: input),
            "position": MLFeatureValue(multiArray: positionArray),
        ])
        let output = try model.prediction(from: features, using: state, options: MLPredictionOptions())
        guard let logits = output.featureValue(for: "logits")?.multiArrayValue else {
            throw GenerationError.modelOutput("no 'logits' output")
        }
        guard logits.shape.count == 4, logits.shape[1].intValue == ids.count,
              logits.shape[2].intValue * logits.shape[3].intValue >= vocabularySize
        else {
            throw GenerationError.modelOutput("logits shape \(logits.shape) does not match export.json")
        }
        return logits
    }

    /// Row `t` of logits [1, T, pieces, pieceSize], flattened over the last two dimensions and cut
    /// to the vocabulary. Strides are honoured: Core ML may pad rows for the Neural Engine.
    private func row(_ t: Int, of logits: MLMultiArray) -> [Float] {
        let pieceSize = logits.shape[3].intValue
        let vocabulary = vocabularySize
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
#endif
