import ELMKit
import Foundation

/// Loads the export folder, generates, and prints the text as it streams, then the stats line.
/// Compiled everywhere (type-checked against CoreMLStandIn on Linux); main.swift runs it only
/// where Core ML exists.
@available(macOS 15.0, iOS 18.0, *)
enum Runner {
    static func run(_ options: RunOptions) async throws {
        let folder = URL(fileURLWithPath: options.modelFolder, isDirectory: true)
        let manifest = try ExportManifest.load(from: folder)
        guard manifest.tokenizer != nil else {
            throw ManifestError(source: folder.path, reason: "the model was exported without a tokenizer; export again with a tokenizer to run text prompts")
        }
        let tokenizer = try Tokenizer(contentsOf: folder)
        // On stderr, so stdout holds only the generated text and the stats line.
        FileHandle.standardError.write(Data("Loading \(manifest.name): \(manifest.packagesDescription)\n".utf8))

        let loadStart = ContinuousClock.now
        let model = try await CoreMLLanguageModel.load(folder: folder, computeUnits: options.computeUnits)
        let loadSeconds = (ContinuousClock.now - loadStart).components
        let load = Double(loadSeconds.seconds) + Double(loadSeconds.attoseconds) * 1e-18

        let prompt = tokenizer.encode(options.prompt, addBOS: manifest.tokenizer?.addBOS ?? true)
        let generator = Generator(model: model, tokenizer: tokenizer)
        let result = try generator.generate(
            promptTokens: prompt,
            options: GenerationOptions(maxNewTokens: options.maxTokens, sampling: options.sampling,
                                       eosTokenId: manifest.eosTokenId ?? tokenizer.eosTokenId),
            loadSeconds: load
        ) { token in
            // Unbuffered, so text appears as it is generated.
            FileHandle.standardOutput.write(Data(token.text.utf8))
            return true
        }
        print("")
        let label = manifest.isSplit ? "\(manifest.name) in \(manifest.chunks.count) packages" : manifest.name
        print("[\(label) on \(options.computeUnits.rawValue)] \(result.stats) | stop: \(result.stopReason.rawValue)")
    }
}
