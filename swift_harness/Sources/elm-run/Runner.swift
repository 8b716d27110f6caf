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
        // Before loading anything: a --format the folder lacks, or --chat without a template, is a one-line error.
        let format = try ModelLoader.chooseFormat(for: manifest, preferred: options.format)
        let functionNames = try FunctionNames(manifest: manifest, adapter: options.adapter)
        let speculation = try Speculation.resolve(options.speculation, draftFolder: options.draftFolder, exportHasVerify: manifest.hasVerify)
        let tokenizer = try Tokenizer(contentsOf: folder)
        let chat = options.chat ? try chatPrompt(manifest, tokenizer) : nil
        // On stderr, so stdout holds only the generated text and the stats line.
        log("Loading \(manifest.name) with \(format.displayName): \(manifest.packagesDescription(for: format))")
        if functionNames.adapter != nil || !manifest.adapters.isEmpty { log("Running \(manifest.adapterDescription(functionNames))") }

        let loadStart = ContinuousClock.now
        let model = try await ModelLoader.load(folder: folder, manifest: manifest, format: format, computeUnits: options.computeUnits,
                                               adapter: functionNames.adapter)
        let drafter = try await makeDrafter(speculation, options: options, target: manifest, tokenizer: tokenizer, format: format)
        let load = seconds(ContinuousClock.now - loadStart)

        let generation = manifest.generation
        let session = RunSession(
            manifest: manifest, format: format, computeUnits: options.computeUnits, adapter: functionNames.adapter, tokenizer: tokenizer,
            generator: Generator(model: model, tokenizer: tokenizer, drafter: drafter),
            options: GenerationOptions(maxNewTokens: options.maxTokens(defaults: generation?.defaults),
                                       sampling: options.sampling(defaults: generation?.defaults),
                                       eosTokenId: manifest.eosTokenId ?? tokenizer.eosTokenId,
                                       stopTokenIds: Set((generation?.stopTokenIds ?? []) + options.stopTokens)),
            loadSeconds: load)
        if let chat {
            try await ChatLoop.run(session, chat: chat)
        } else {
            let prompt = tokenizer.encode(options.prompt, addBOS: manifest.tokenizer?.addBOS ?? true)
            let result = try await session.generate(prompt, loadSeconds: load)
            print("")
            print(session.statsLine(result))
        }
    }

    private static func chatPrompt(_ manifest: ExportManifest, _ tokenizer: Tokenizer) throws -> ChatPrompt {
        guard let chat = try ChatPrompt.forExport(manifest, tokenizer: tokenizer) else {
            throw UsageError("this export has no chat template (a base model); use --prompt, or re-export with --chat-template FILE")
        }
        return chat
    }

    /// The drafter for `speculation`; for --draft, loads the draft export after checking that it
    /// shares the target's vocabulary.
    private static func makeDrafter(_ speculation: Speculation, options: RunOptions, target: ExportManifest,
                                    tokenizer: Tokenizer, format: ExportFormat) async throws -> (any Drafter)? {
        switch speculation {
        case .none: return nil
        case .lookup: return PromptLookupDrafter(maxNgram: 3)
        case .draft:
            let folder = URL(fileURLWithPath: options.draftFolder ?? "", isDirectory: true)
            let draft = try ExportManifest.load(from: folder)
            let draftTokenizer = draft.tokenizer == nil ? nil : try Tokenizer(contentsOf: folder)
            if let problem = Speculation.vocabularyProblem(target: target, draft: draft, targetTokenizer: tokenizer,
                                                           draftTokenizer: draftTokenizer) {
                throw UsageError(problem)
            }
            // The target's format when the draft has it, so both run on the same framework.
            let draftFormat = try ModelLoader.chooseFormat(for: draft, preferred: draft.formats.contains(format) ? format : nil)
            // An adapter belongs to the target's export: the draft runs its base weights (adapter: nil).
            let baseOnly = options.adapter == nil ? "" : "; base weights, the adapter applies to the target only"
            log("Drafting with \(draft.name) (\(draftFormat.displayName)): \(draft.packagesDescription(for: draftFormat))\(baseOnly)")
            let model = try await ModelLoader.load(folder: folder, manifest: draft, format: draftFormat, computeUnits: options.computeUnits,
                                                   adapter: nil)
            // Drafts under the sampling's repetition penalty, so they follow what the target will pick.
            let penalty = options.sampling(defaults: target.generation?.defaults).repetitionPenalty
            return DraftModelDrafter(model: model, repetitionPenalty: penalty)
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }

    static func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// A loaded model with everything a generation needs, for prompt and chat mode alike.
@available(macOS 15.0, iOS 18.0, *)
struct RunSession {
    let manifest: ExportManifest
    let format: ExportFormat
    let computeUnits: ComputeUnits
    /// The LoRA adapter the target runs with; nil for the base model.
    let adapter: String?
    let tokenizer: Tokenizer
    let generator: Generator
    let options: GenerationOptions
    let loadSeconds: Double

    /// Generates after `prompt`, writing each token's text as it comes. The generation runs on the
    /// generator's own queue (model calls block; Core AI's wait for async work), not on this task.
    func generate(_ prompt: [Int], loadSeconds: Double) async throws -> GenerationResult {
        for try await event in generator.stream(promptTokens: prompt, options: options, loadSeconds: loadSeconds) {
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

    /// "[name, Core ML on cpuAndNeuralEngine] load … | stop: …", with the drafts' acceptance when
    /// speculating; "[name + adapter psalms, …]" with an adapter.
    func statsLine(_ result: GenerationResult) -> String {
        let packages = manifest.chunks(for: format).count
        let name = manifest.name + (adapter.map { " + adapter \($0)" } ?? "")
        let label = packages > 1 ? "\(name) in \(packages) packages" : name
        return "[\(label), \(format.displayName) on \(computeUnits.rawValue)] \(result.stats) | stop: \(result.stopReason.rawValue)"
    }
}
