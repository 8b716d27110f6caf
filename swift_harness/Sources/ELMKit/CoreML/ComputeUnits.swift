/// Which processors Core ML may use. Defined without Core ML so options parse (and are tested) everywhere.
public enum ComputeUnits: String, CaseIterable, Sendable {
    case all
    case cpuAndNeuralEngine
    case cpuAndGPU
    case cpuOnly
}

#if canImport(CoreML)
import CoreML

extension ComputeUnits {
    public var mlComputeUnits: MLComputeUnits {
        switch self {
        case .all: return .all
        case .cpuAndNeuralEngine: return .cpuAndNeuralEngine
        case .cpuAndGPU: return .cpuAndGPU
        case .cpuOnly: return .cpuOnly
        }
    }
}
#endif
