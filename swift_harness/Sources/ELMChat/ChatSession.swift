import ELMKit
import Foundation
import Observation

/// Loads the model once and streams replies into `messages`. UI-independent: `ChatView` shows it,
/// tests drive it with a fake model.
///
/// An export with a chat template (an instruct model) gets the whole conversation rendered with
/// it for every reply; a base model gets the newest message alone, as text to continue.
///
/// The model runs with Core AI when the folder holds a Core AI model and the OS has Core AI
/// (iOS 27 / macOS 27), else with Core ML (`preferredFormat` overrides the choice). An export with
/// LoRA adapters (export.json's `adapters`, listed in `availableAdapters`) runs its base weights
/// until `selectAdapter(_:)` reloads it with one.
///
/// Model calls never overlap. `stop()` ends a reply at once for the UI, but the model call in
/// flight (a Core ML prediction or Core AI run cannot be interrupted) still runs to its end; the
/// next reply's model calls start only after it has returned, because calls that share a cache
/// (Core ML's MLState, Core AI's state arrays) must be serialised. `send` right after `stop` is
/// fine: the new reply waits for the old one.
@MainActor
@Observable
public final class ChatSession {
    /// The folder reference added to the app target (see README): export.json, the .mlpackage(s)
    /// and/or .aimodel(s), tokenizer files.
    public static let modelFolderName = "Model"

    public private(set) var messages: [ChatMessage] = []
    public private(set) var status = "Loading model…"
    public private(set) var isReady = false
    /// True from `send` until the reply is complete or `stop()` is called.
    public private(set) var isGenerating = false
    /// Live decode speed while a reply streams.
    public private(set) var tokensPerSecond: Double?

    public var computeUnits = ComputeUnits.cpuAndNeuralEngine
    /// The format to run, or nil to choose (Core AI where the folder has it and the OS runs it).
    public var preferredFormat: ExportFormat?
    /// The LoRA adapter the model runs (or will run, before loading) with; nil for the base model.
    public private(set) var adapter: String?
    /// The export's adapters by name (sorted); empty before loading and for exports without any.
    public private(set) var availableAdapters: [String] = []
    public var maxTokens = 256
    public var sampling = SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.2, seed: 0)

    private var generator: Generator?
    private var addBOS = true
    private var eosTokenId: Int?
    private var stopTokenIds: Set<Int> = []
    /// The export's chat template; nil for a base model.
    private var chatPrompt: ChatPrompt?
    private var loadSeconds = 0.0
    /// The newest reply's task. A reply's task ends only once its model calls are over (a stopped
    /// one included), and each reply's task first waits for the one before it.
    private var generation: Task<Void, Never>?
    /// The folder `load(folder:)` read, so `selectAdapter` can load it again.
    private var folder: URL?

    /// How a model is loaded: `ModelLoader.load` (tests give fakes, as there is no Core ML on Linux).
    typealias LoadModel = @Sendable (_ folder: URL, _ manifest: ExportManifest, _ format: ExportFormat,
                                     _ computeUnits: ComputeUnits, _ adapter: String?) async throws -> any LanguageModel
    let loadModel: LoadModel

    public init() {
        loadModel = { folder, manifest, format, units, adapter in
            try await ModelLoader.load(folder: folder, manifest: manifest, format: format, computeUnits: units, adapter: adapter)
        }
    }

    init(loadModel: @escaping LoadModel) {
        self.loadModel = loadModel
    }

    /// Loads the exported folder bundled with the app (`Bundle.main`/"Model"), once.
    public func load() async {
        guard generator == nil else { return }
        #if canImport(CoreML)
        guard let folder = Bundle.main.url(forResource: Self.modelFolderName, withExtension: nil) else {
            status = "No \"\(Self.modelFolderName)\" folder in the app bundle; add the exported folder as a folder reference (see README)."
            return
        }
        await load(folder: folder)
        #else
        status = "Core ML is not available on this platform; the chat app runs on iOS 18 / macOS 15 (Core AI models: iOS 27 / macOS 27)."
        #endif
    }

    /// Loads an export folder (export.json, the packages, tokenizer files) with Core AI or Core ML.
    public func load(folder: URL) async {
        guard generator == nil else { return }
        self.folder = folder
        let units = computeUnits
        let preferred = preferredFormat
        let adapter = self.adapter
        let loadModel = self.loadModel
        do {
            // Loading (and the first-launch compile or specialization) is slow: keep it off the main actor.
            let loaded = try await Task.detached(priority: .userInitiated) {
                let start = ContinuousClock.now
                let manifest = try ExportManifest.load(from: folder)
                // Before the slow loads: an adapter the export lacks fails here, naming the ones it has.
                _ = try FunctionNames(manifest: manifest, adapter: adapter)
                let format = try ModelLoader.chooseFormat(for: manifest, preferred: preferred)
                let tokenizer = try Tokenizer(contentsOf: folder)
                let model = try await loadModel(folder, manifest, format, units, adapter)
                let elapsed = (ContinuousClock.now - start).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
                return (Generator(model: model, tokenizer: tokenizer), manifest, format, seconds)
            }.value
            let (generator, manifest, format, seconds) = loaded
            // Another adapter was chosen while this one loaded: that load's result is the one to use.
            guard adapter == self.adapter else { return }
            availableAdapters = manifest.adapterNames
            let packageCount = manifest.chunks(for: format).count
            let packages = packageCount > 1 ? "\(packageCount) packages, " : ""
            let adapterNote = adapter.map { "adapter \($0), " } ?? ""
            var note = ""
            var chatPrompt: ChatPrompt?
            do {
                chatPrompt = try ChatPrompt.forExport(manifest, tokenizer: generator.tokenizer)
            } catch {
                note = "; its chat template cannot be used (\(error)), so messages go as plain text"
            }
            use(generator, addBOS: manifest.tokenizer?.addBOS ?? true,
                eosTokenId: manifest.eosTokenId ?? generator.tokenizer?.eosTokenId, loadSeconds: seconds,
                status: "\(manifest.name) ready (\(format.displayName), \(packages)\(adapterNote)loaded in \(String(format: "%.1f", seconds)) s)\(note)",
                chatPrompt: chatPrompt, stopTokenIds: Set(manifest.generation?.stopTokenIds ?? []))
        } catch {
            guard adapter == self.adapter else { return }
            // Still offer the export's adapters: choosing another one is how to recover from a bad choice.
            availableAdapters = (try? ExportManifest.load(from: folder))?.adapterNames ?? []
            status = "Could not load the model: \(error)"
        }
    }

    /// Runs the model with LoRA adapter `name` (one of `availableAdapters`), or the base model for
    /// nil: the folder is loaded again with it, after the reply in progress (if any) is stopped
    /// and its model call has returned. Before the first load it only records the choice.
    public func selectAdapter(_ name: String?) async {
        guard name != adapter else { return }
        adapter = name
        guard let folder else { return }
        stop()
        await waitUntilIdle()
        guard name == adapter else { return }  // chosen again meanwhile: that call reloads
        generator = nil
        isReady = false
        status = "Loading \(name.map { "adapter \($0)" } ?? "the base model")…"
        await load(folder: folder)
    }

    /// Uses a model loaded elsewhere (any `LanguageModel`; tests use fakes). The generator needs a
    /// tokenizer. With `chatPrompt`, each reply's prompt is the conversation rendered with it.
    public func use(_ generator: Generator, addBOS: Bool = true, eosTokenId: Int? = nil, loadSeconds: Double = 0,
                    status: String = "Ready", chatPrompt: ChatPrompt? = nil, stopTokenIds: Set<Int> = []) {
        guard generator.tokenizer != nil else {
            self.status = "The model has no tokenizer; export it again with one to chat."
            return
        }
        self.generator = generator
        self.addBOS = addBOS
        self.eosTokenId = eosTokenId
        self.chatPrompt = chatPrompt
        self.stopTokenIds = stopTokenIds
        self.loadSeconds = loadSeconds
        self.status = status
        isReady = true
    }

    public func send(_ prompt: String) {
        guard let generator, let tokenizer = generator.tokenizer, !isGenerating,
              !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        messages.append(ChatMessage(role: .user, text: prompt))
        let tokens: [Int]
        do {
            tokens = try promptTokens(tokenizer, contextLength: generator.model.contextLength)
        } catch {
            messages.append(ChatMessage(role: .model, text: "", stats: "Error: \(error)"))
            return
        }
        messages.append(ChatMessage(role: .model, text: ""))
        let replyIndex = messages.count - 1
        isGenerating = true
        tokensPerSecond = nil

        let options = GenerationOptions(maxNewTokens: maxTokens, sampling: sampling,
                                        eosTokenId: eosTokenId ?? tokenizer.eosTokenId, stopTokenIds: stopTokenIds)
        let load = loadSeconds
        let previous = generation
        generation = Task {
            // A stopped reply may still be inside a model call: start once it has returned.
            await previous?.value
            if !Task.isCancelled {
                await stream(generator.stream(promptTokens: tokens, options: options, loadSeconds: load), into: replyIndex)
            }
            // Stopping leaves the stream at once, but not the model call in flight: this task (which
            // the next reply waits for) ends only when the model is free again.
            await generator.waitUntilIdle()
            if Task.isCancelled {
                if messages[replyIndex].stats == nil { messages[replyIndex].stats = "Stopped" }
            } else {
                isGenerating = false  // after stop(), a newer reply may own the flag
            }
        }
    }

    /// The prompt for a reply to the newest message: the conversation so far rendered with the
    /// chat template (oldest turns dropped when it would leave no room for the reply), or, for a
    /// base model, which continues text, the newest message as is.
    private func promptTokens(_ tokenizer: Tokenizer, contextLength: Int) throws -> [Int] {
        guard let chatPrompt else { return tokenizer.encode(messages[messages.count - 1].text, addBOS: addBOS) }
        let turns = messages.map { ChatTurn(role: $0.role == .user ? "user" : "assistant", content: $0.text) }
        return try chatPrompt.tokens(for: turns, tokenizer: tokenizer, budget: max(contextLength - maxTokens, contextLength / 2))
    }

    /// Ends the current reply now; its model call in flight finishes in the background, and the
    /// next `send` waits for it.
    public func stop() {
        guard isGenerating else { return }
        generation?.cancel()
        isGenerating = false
        tokensPerSecond = nil
    }

    /// Returns when the newest reply (and every one before it) is over and the model is idle.
    public func waitUntilIdle() async {
        await generation?.value
    }

    private func stream(_ events: AsyncThrowingStream<GenerationEvent, Error>, into replyIndex: Int) async {
        var firstTokenAt: ContinuousClock.Instant?
        var count = 0
        do {
            for try await event in events {
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
        } catch is CancellationError {
            // stop(): the reply is marked as stopped by the caller.
        } catch {
            messages[replyIndex].stats = "Error: \(error)"
        }
    }
}
