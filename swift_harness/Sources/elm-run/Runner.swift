import ELMKit
import Foundation

/// Loads the export folder in the format chosen for it (Core AI or Core ML), generates, and prints
/// the text as it streams, then the stats line. Compiled everywhere (type-checked against the
/// stand-ins on Linux); main.swift runs it only where Core ML exists.
@available(macOS 15.0, iOS 18.0, *)
enum Runner {
    static func run(_ options: RunOptions) async throws {
        let folder = URL(fileURLWithPath: options.modelFolder, isDirectory: true)
        let manifest = try ExportManifest.load(from: folder)
        guard manifest.tokenizer != nil else {
            throw ManifestError(source: folder.path, reason: "the model was exported without a tokenizer; export again with a tokenizer to run text prompts")
        }
        // Before loading anything: a --format the folder lacks is a one-line error.
        let format = try ModelLoader.chooseFormat(for: manifest, preferred: options.format)
        let tokenizer = try Tokenizer(contentsOf: folder)
        // On stderr, so stdout holds only the generated text and the stats line.
        FileHandle.standardError.write(Data("Loading \(manifest.name) with \(format.displayName): \(manifest.packagesDescription(for: format))\n".utf8))

        let loadStart = ContinuousClock.now
        let model = try await ModelLoader.load(folder: folder, manifest: manifest, format: format, computeUnits: options.computeUnits)
        let load = seconds(ContinuousClock.now - loadStart)

        let prompt = tokenizer.encode(options.prompt, addBOS: manifest.tokenizer?.addBOS ?? true)
        let generator = Generator(model: model, tokenizer: tokenizer)
        let result = try await streamText(generator.stream(
            promptTokens: prompt,
            options: GenerationOptions(maxNewTokens: options.maxTokens, sampling: options.sampling,
                                       eosTokenId: manifest.eosTokenId ?? tokenizer.eosTokenId),
            loadSeconds: load))
        print("")
        let packages = manifest.chunks(for: format).count
        let label = packages > 1 ? "\(manifest.name) in \(packages) packages" : manifest.name
        print("[\(label), \(format.displayName) on \(options.computeUnits.rawValue)] \(result.stats) | stop: \(result.stopReason.rawValue)")
    }

    /// Writes each token's text as it comes and returns the result. The generation runs on the
    /// generator's own queue (model calls block; Core AI's wait for async work), not on this task.
    private static func streamText(_ events: AsyncThrowingStream<GenerationEvent, Error>) async throws -> GenerationResult {
        for try await event in events {
            switch event {
            case .token(let token):
                // Unbuffered, so text appears as it is generated.
                FileHandle.standardOutput.write(Data(token.text.utf8))
            case .finished(let result):
                return result
            }
        }
        throw GenerationError.modelOutput("generation ended without a result")
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
