/// A model format an export folder can hold; the raw value is how export.json's `formats` names it.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// `.mlpackage` folders, run with Core ML (iOS 18 / macOS 15).
    case coreML = "coreml"
    /// `.aimodel` folders, run with Core AI (iOS 27 / macOS 27).
    case coreAI = "coreai"

    /// "Core ML" or "Core AI", for messages and stats lines.
    public var displayName: String {
        switch self {
        case .coreML: return "Core ML"
        case .coreAI: return "Core AI"
        }
    }

    /// The file extension of this format's packages in the folder.
    public var packageExtension: String {
        switch self {
        case .coreML: return "mlpackage"
        case .coreAI: return "aimodel"
        }
    }

    /// The format to run an export with. Pure logic, so every platform tests the same rules.
    ///
    /// - Parameters:
    ///   - available: what the folder holds (export.json's `formats`).
    ///   - preferred: a format the user asked for (elm-run's `--format`), or nil to choose.
    ///   - coreAIAvailable: whether this OS can run Core AI (`CoreAIRuntime.isAvailable`).
    /// - Returns: `preferred` when given; otherwise Core AI when the folder has it and the OS runs
    ///   it (it is Core ML's successor), else Core ML.
    public static func choose(available: [ExportFormat], preferred: ExportFormat?, coreAIAvailable: Bool) throws -> ExportFormat {
        if let preferred {
            guard available.contains(preferred) else { throw FormatChoiceError.notInFolder(preferred, available: available) }
            guard preferred != .coreAI || coreAIAvailable else { throw FormatChoiceError.coreAIUnavailable(onlyFormat: false) }
            return preferred
        }
        if available.contains(.coreAI) && coreAIAvailable { return .coreAI }
        if available.contains(.coreML) { return .coreML }
        // Only Core AI in the folder, and this OS cannot run it.
        throw FormatChoiceError.coreAIUnavailable(onlyFormat: true)
    }
}

/// Why `ExportFormat.choose` found nothing to run; one line each, for elm-run's error output.
public enum FormatChoiceError: Error, Equatable, CustomStringConvertible {
    /// The requested format is not in the folder.
    case notInFolder(ExportFormat, available: [ExportFormat])
    /// Core AI was needed (asked for, or the only format in the folder) but this OS lacks it.
    case coreAIUnavailable(onlyFormat: Bool)

    public var description: String {
        switch self {
        case .notInFolder(let format, let available):
            let held = available.map(\.rawValue).joined(separator: ", ")
            return "the folder holds no \(format.displayName) model (export.json formats: \(held)); export it again with \(format.rawValue) or choose --format \(available.first?.rawValue ?? "coreml")"
        case .coreAIUnavailable(let onlyFormat):
            let what = onlyFormat ? "the folder holds only a Core AI model, which" : "Core AI"
            return "\(what) needs iOS 27 / macOS 27 on Apple silicon; run it there, or export the model with coreml too"
        }
    }
}
