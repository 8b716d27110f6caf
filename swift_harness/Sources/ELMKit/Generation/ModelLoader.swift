import Foundation

/// Loads an export folder's model in whichever format it should run: what elm-run and the chat
/// app call, so neither needs to know which formats this build and OS support.
public enum ModelLoader {
    /// The format to run `manifest`'s folder with here: `preferred` if given, else Core AI when
    /// the folder has it and this OS runs it, else Core ML (see `ExportFormat.choose`).
    public static func chooseFormat(for manifest: ExportManifest, preferred: ExportFormat? = nil) throws -> ExportFormat {
        try ExportFormat.choose(available: manifest.formats, preferred: preferred, coreAIAvailable: CoreAIRuntime.isAvailable)
    }

    /// Loads `format`'s packages from `folder` (whose export.json is `manifest`), running the LoRA
    /// adapter named `adapter` (one of export.json's `adapters`), or the base model when nil.
    /// An unknown adapter is an `AdapterChoiceError` that lists the export's adapters.
    @available(macOS 15.0, iOS 18.0, *)
    public static func load(folder: URL, manifest: ExportManifest, format: ExportFormat,
                            computeUnits: ComputeUnits, adapter: String? = nil) async throws -> any LanguageModel {
        switch format {
        case .coreML:
            return try await CoreMLLanguageModel.load(folder: folder, manifest: manifest, computeUnits: computeUnits, adapter: adapter)
        case .coreAI:
            #if (canImport(CoreAI) && arch(arm64)) || !canImport(CoreML)
            if #available(macOS 27.0, iOS 27.0, *) {
                return try await CoreAILanguageModel.load(folder: folder, manifest: manifest, computeUnits: computeUnits, adapter: adapter)
            }
            #endif
            throw FormatChoiceError.coreAIUnavailable(onlyFormat: !manifest.formats.contains(.coreML))
        }
    }
}
