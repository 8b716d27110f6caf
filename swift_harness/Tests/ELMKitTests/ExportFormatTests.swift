import Dispatch
import Foundation
import Testing
@testable import ELMKit

/// Which format elm-run and the chat app run a folder with, and the bridge the Core AI runner uses.
@Suite struct ExportFormatTests {
    let both: [ExportFormat] = [.coreML, .coreAI]

    func choose(_ available: [ExportFormat], _ preferred: ExportFormat? = nil, coreAI: Bool) throws -> ExportFormat {
        try ExportFormat.choose(available: available, preferred: preferred, coreAIAvailable: coreAI)
    }

    @Test func withoutAPreferenceCoreAIWinsWhereItRuns() throws {
        #expect(try choose(both, coreAI: true) == .coreAI)
        #expect(try choose([.coreAI, .coreML], coreAI: true) == .coreAI)
        #expect(try choose(both, coreAI: false) == .coreML)
        #expect(try choose([.coreML], coreAI: true) == .coreML)
        #expect(try choose([.coreAI], coreAI: true) == .coreAI)
        #expect(throws: FormatChoiceError.coreAIUnavailable(onlyFormat: true)) { try choose([.coreAI], coreAI: false) }
    }

    @Test func aPreferenceIsHonouredOrRefused() throws {
        #expect(try choose(both, .coreML, coreAI: true) == .coreML)
        #expect(try choose(both, .coreAI, coreAI: true) == .coreAI)
        #expect(throws: FormatChoiceError.notInFolder(.coreAI, available: [.coreML])) { try choose([.coreML], .coreAI, coreAI: true) }
        #expect(throws: FormatChoiceError.notInFolder(.coreML, available: [.coreAI])) { try choose([.coreAI], .coreML, coreAI: true) }
        #expect(throws: FormatChoiceError.coreAIUnavailable(onlyFormat: false)) { try choose(both, .coreAI, coreAI: false) }
    }

    @Test func refusalsAreOneLineEach() {
        let messages = [
            FormatChoiceError.notInFolder(.coreAI, available: [.coreML]).description,
            FormatChoiceError.coreAIUnavailable(onlyFormat: true).description,
            FormatChoiceError.coreAIUnavailable(onlyFormat: false).description,
        ]
        #expect(messages.allSatisfy { !$0.contains("\n") && !$0.isEmpty })
        #expect(messages[0].contains("the folder holds no Core AI model (export.json formats: coreml)"), "\(messages[0])")
        #expect(messages[1].contains("holds only a Core AI model") && messages[1].contains("macOS 27"), "\(messages[1])")
    }

    @Test func namesAndExtensions() {
        #expect(ExportFormat(rawValue: "coreml") == .coreML && ExportFormat(rawValue: "coreai") == .coreAI)
        #expect(ExportFormat.coreAI.displayName == "Core AI" && ExportFormat.coreML.displayName == "Core ML")
        #expect(ExportFormat.coreAI.packageExtension == "aimodel" && ExportFormat.coreML.packageExtension == "mlpackage")
    }

    #if os(Linux)
    /// Linux compiles the Core AI runner against the stand-in, but never offers it.
    @Test func linuxNeverRunsCoreAI() throws {
        #expect(!CoreAIRuntime.isAvailable)
        let both = try ExportManifest.load(from: Fixtures.url(CoreAIManifestTests.bothFormats))
        #expect(try ModelLoader.chooseFormat(for: both) == .coreML)
        let coreAIOnly = try ExportManifest.load(from: Fixtures.url(CoreAIManifestTests.coreAIOnly))
        #expect(throws: FormatChoiceError.coreAIUnavailable(onlyFormat: true)) { try ModelLoader.chooseFormat(for: coreAIOnly) }
    }
    #endif

    /// `BlockingAsync.run` from a dispatch thread, as `Generator.stream` calls the model.
    func runBlocking(_ operation: @escaping @Sendable () async throws -> Int) async -> Result<Int, Error> {
        await withCheckedContinuation { done in
            DispatchQueue.global().async {
                done.resume(returning: Result { try BlockingAsync.run(operation) })
            }
        }
    }

    @Test func blockingAsyncReturnsTheValueOrTheError() async {
        let value = await runBlocking {
            try await Task.sleep(nanoseconds: 10_000_000)
            return 42
        }
        #expect((try? value.get()) == 42)
        let failure = await runBlocking { throw GenerationError.emptyPrompt }
        #expect(throws: GenerationError.self) { try failure.get() }
    }
}
