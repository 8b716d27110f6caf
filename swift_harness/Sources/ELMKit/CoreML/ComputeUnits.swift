#if canImport(CoreML)
import CoreML
#else
import CoreMLStandIn  // Apple's declarations, so this file is type-checked where Core ML is missing
#endif

/// Which processors Core ML may use. Its cases parse (and are tested) everywhere.
public enum ComputeUnits: String, CaseIterable, Sendable {
    case all
    case cpuAndNeuralEngine
    case cpuAndGPU
    case cpuOnly
}

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
