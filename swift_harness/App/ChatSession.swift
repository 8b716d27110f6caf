import ELMKit
import Foundation
import Observation

/// Loads the bundled model once and streams replies into `messages`.
@MainActor
@Observable
final class ChatSession {
    /// The folder reference added to the app target (see README): export.json, the .mlpackage(s), tokenizer files.
    static let modelFolderName = "Model"

    private(set) var messages: [ChatMessage] = []
    private(set) var status = "Loading model…"
    private(set) var isReady = false
    private(set) var isGenerating = false
    /// Live decode speed while a reply streams.
    private(set) var tokensPerSecond: Double?

    var computeUnits = ComputeUnits.cpuAndNeuralEngine
    var maxTokens = 256
    var sampling = SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.2, seed: 0)

    private var generator: Generator?
    private var tokenizer: Tokenizer?
    private var manifest: ExportManifest?
    private var loadSeconds = 0.0
    private var generation: Task<Void, Never>?

    func load() async {
        guard generator == nil else { return }
        guard let folder = Bundle.main.url(forResource: Self.modelFolderName, withExtension: nil) else {
            status = "No \"\(Self.modelFolderName)\" folder in the app bundle; add the exported folder as a folder reference (see README)."
            return
        }
        let units = computeUnits
        do {
            // Loading (and the first-launch compile) is slow: keep it off the main actor.
            let loaded = try await Task.detached(priority: .userInitiated) {
                let start = ContinuousClock.now
                let manifest = try ExportManifest.load(from: folder)
                let tokenizer = try Tokenizer(contentsOf: folder)
                let model = try await CoreMLLanguageModel.load(folder: folder, computeUnits: units)
                let elapsed = (ContinuousClock.now - start).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
                return (Generator(model: model, tokenizer: tokenizer), tokenizer, manifest, seconds)
            }.value
            (generator, tokenizer, manifest, loadSeconds) = loaded
            isReady = true
            let packages = loaded.2.isSplit ? "\(loaded.2.chunks.count) packages, " : ""
            status = "\(loaded.2.name) ready (\(packages)loaded in \(String(format: "%.1f", loaded.3)) s)"
        } catch {
            status = "Could not load the model: \(error)"
        }
    }

    func send(_ prompt: String) {
        guard let generator, let tokenizer, let manifest, !isGenerating,
              !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        messages.append(ChatMessage(role: .user, text: prompt))
        messages.append(ChatMessage(role: .model, text: ""))
        let replyIndex = messages.count - 1
        isGenerating = true
        tokensPerSecond = nil

        // OpenELM base models continue text; the prompt is sent as is.
        let tokens = tokenizer.encode(prompt, addBOS: manifest.tokenizer?.addBOS ?? true)
        let options = GenerationOptions(maxNewTokens: maxTokens, sampling: sampling,
                                        eosTokenId: manifest.eosTokenId ?? tokenizer.eosTokenId)
        let load = loadSeconds
        generation = Task {
            var firstTokenAt: ContinuousClock.Instant?
            var count = 0
            do {
                for try await event in generator.stream(promptTokens: tokens, options: options, loadSeconds: load) {
                    switch event {
                    case .token(let token):
                        messages[replyIndex].text += token.text
                        count += 1
                        let now = ContinuousClock.now
                        if let first = firstTokenAt {
                            let elapsed = (now - first).components
                            let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
                            if seconds > 0 { tokensPerSecond = Double(count - 1) / seconds }
                        } else {
                            firstTokenAt = now
                        }
                    case .finished(let result):
                        messages[replyIndex].text = result.text
                        messages[replyIndex].stats = String(
                            format: "%d tokens · %.1f tok/s · first token %.2f s · prefill %.0f tok/s",
                            result.stats.generatedTokens, result.stats.decodeTokensPerSecond,
                            result.stats.timeToFirstTokenSeconds, result.stats.prefillTokensPerSecond)
                    }
                }
            } catch {
                messages[replyIndex].stats = "Error: \(error)"
            }
            isGenerating = false
        }
    }

    func stop() {
        generation?.cancel()
    }
}
