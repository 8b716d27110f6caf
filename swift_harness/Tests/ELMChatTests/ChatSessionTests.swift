import ELMChat
import ELMKit
import Foundation
import Testing

/// A model whose calls take a while (as Core ML predictions do) and that records how many of its
/// calls are in flight at once. Every prediction is token `predicted`.
final class SlowLanguageModel: LanguageModel, @unchecked Sendable {
    let contextLength = 256
    let prefillLength = 8
    let vocabularySize = 8
    let predicted: Int
    private let callSeconds: Double
    private let decodeSeconds: Double
    private let lock = NSLock()
    private var inFlight = 0
    private var _maxInFlight = 0
    private var _resets = 0
    private var _decodesStarted = 0

    /// `decodeSeconds` for each decode, `callSeconds` for reset and prefill.
    init(predicted: Int = 3, callSeconds: Double = 0.02, decodeSeconds: Double) {
        self.predicted = predicted
        self.callSeconds = callSeconds
        self.decodeSeconds = decodeSeconds
    }

    /// The most calls that were ever in flight together; 1 when they never overlapped.
    var maxInFlight: Int { lock.withLock { _maxInFlight } }
    var resets: Int { lock.withLock { _resets } }
    var decodesStarted: Int { lock.withLock { _decodesStarted } }

    func reset() throws {
        try call(callSeconds) { _resets += 1 }
    }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        try call(callSeconds) {}
        return LogitRows(tokens.map { _ in row() })
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        try call(decodeSeconds) { _decodesStarted += 1 }
        return row()
    }

    private func call(_ seconds: Double, onEntry: () -> Void) throws {
        lock.withLock {
            inFlight += 1
            _maxInFlight = max(_maxInFlight, inFlight)
            onEntry()
        }
        Thread.sleep(forTimeInterval: seconds)  // a blocking call, like MLModel.prediction
        lock.withLock { inFlight -= 1 }
    }

    private func row() -> [Float] {
        var logits = [Float](repeating: 0, count: vocabularySize)
        logits[predicted] = 10
        return logits
    }
}

/// A tokenizer.json small enough to write inline: "a"..."e" plus <unk>, <s>, </s>.
func tinyTokenizer() throws -> Tokenizer {
    let json = """
        {"model": {"type": "BPE", "unk_token": "<unk>", "merges": [],
                   "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "c": 5, "d": 6, "e": 7}}}
        """
    return try Tokenizer(data: Data(json.utf8))
}

/// Polls `condition` on the main actor until it holds, failing after `seconds`.
@MainActor
func waitFor(_ what: String, seconds: Double = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// These tests time model calls that block their threads; running them one at a time keeps one
/// test's blocked threads from delaying another's calls (which could hide an overlap).
@Suite(.serialized) struct ModelCallOrderTests {}

extension ModelCallOrderTests {
    @MainActor
    @Suite struct ChatSessionTests {
        func session(_ model: SlowLanguageModel) throws -> ChatSession {
            let session = ChatSession()
            session.use(Generator(model: model, tokenizer: try tinyTokenizer()))
            session.sampling = .greedy
            return session
        }

        @Test func repliesWithTheModelsTokens() async throws {
            let model = SlowLanguageModel(decodeSeconds: 0.001)
            let chat = try session(model)
            chat.maxTokens = 4
            chat.send("abc")
            #expect(chat.isGenerating)
            await chat.waitUntilIdle()
            #expect(!chat.isGenerating)
            #expect(chat.messages.map(\.role) == [.user, .model])
            #expect(try chat.messages[1].text == tinyTokenizer().decode([3, 3, 3, 3]))
            #expect(chat.messages[1].stats?.hasPrefix("4 tokens") == true)
        }

        /// The race: stop() ends the reply for the UI while a decode is still running; a send() then
        /// must not reset and prefill the model (the same MLState) under that decode.
        @Test func stopThenSendNeverOverlapsModelCalls() async throws {
            let model = SlowLanguageModel(decodeSeconds: 0.4)
            let chat = try session(model)
            chat.maxTokens = 100
            chat.send("abc")
            try await waitFor("the first reply's first decode") { model.decodesStarted >= 1 }
            chat.stop()
            // As the UI does: Send is offered again once the reply no longer shows as generating.
            try await waitFor("the first reply to end") { !chat.isGenerating }
            chat.maxTokens = 2
            chat.send("bcd")
            #expect(chat.messages.count == 4, "the second prompt was not taken")
            await chat.waitUntilIdle()

            #expect(model.maxInFlight == 1, "two model calls were in flight at once")
            #expect(model.resets == 2)  // the second reply did run
            #expect(chat.messages[1].stats == "Stopped")
            #expect(try chat.messages[3].text == tinyTokenizer().decode([3, 3]))
            #expect(chat.messages[3].stats?.hasPrefix("2 tokens") == true)
            #expect(!chat.isGenerating)
        }

        @Test func sendRightAfterStopWaitsForTheStoppedReply() async throws {
            let model = SlowLanguageModel(decodeSeconds: 0.3)
            let chat = try session(model)
            chat.maxTokens = 100
            chat.send("abc")
            try await waitFor("the first reply's first decode") { model.decodesStarted >= 1 }
            chat.stop()
            chat.maxTokens = 1
            chat.send("bcd")  // no wait at all
            #expect(chat.isGenerating && chat.messages.count == 4)
            await chat.waitUntilIdle()
            #expect(model.maxInFlight == 1)
            #expect(try model.resets == 2 && chat.messages[3].text == tinyTokenizer().decode([3]))
        }
    }
}

extension ModelCallOrderTests {
    /// Generator-level guarantee, whoever consumes the streams: generations run one after another.
    @Suite struct GeneratorSerialisationTests {
        @Test func streamsDroppedMidwayNeverOverlapTheNextOne() async throws {
            let model = SlowLanguageModel(decodeSeconds: 0.2)
            let generator = Generator(model: model, tokenizer: try tinyTokenizer())
            let options = GenerationOptions(maxNewTokens: 50)
            // Take one token from each stream and drop it, as a cancelled UI task does.
            for prompt in [[1, 3], [1, 4], [1, 5]] {
                for try await event in generator.stream(promptTokens: prompt, options: options) {
                    if case .token = event { break }
                }
            }
            await generator.waitUntilIdle()
            #expect(model.maxInFlight == 1)
            #expect(model.resets == 3)
        }

        @Test func concurrentGenerateCallsTakeTurns() async throws {
            let model = SlowLanguageModel(decodeSeconds: 0.01)
            let generator = Generator(model: model, tokenizer: try tinyTokenizer())
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        _ = try? generator.generate(promptTokens: [1, 3, 4], options: GenerationOptions(maxNewTokens: 5))
                    }
                }
            }
            #expect(model.maxInFlight == 1 && model.resets == 3)
        }
    }
}

/// Loading picks the format with `ModelLoader`; where Core AI cannot run (Linux, older OSes) a
/// Core AI-only folder says what it needs instead of failing inside a framework.
@MainActor
@Suite struct ChatSessionFormatTests {
    /// A copy of ELMKitTests' Core AI-only fixture as an export folder's export.json.
    func coreAIOnlyFolder() throws -> URL {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ELMKitTests/Fixtures/manifest_coreai_only.json")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ELMChatTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixture, to: folder.appendingPathComponent(ExportManifest.fileName))
        return folder
    }

    @Test func aCoreAIOnlyFolderNeedsCoreAI() async throws {
        guard !CoreAIRuntime.isAvailable else { return }  // there it would load the (absent) .aimodel folders
        let folder = try coreAIOnlyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = ChatSession()
        await session.load(folder: folder)
        #expect(!session.isReady)
        #expect(session.status.contains("Could not load the model: the folder holds only a Core AI model"), "\(session.status)")
    }

    @Test func forcingAFormatTheFolderLacksIsRefused() async throws {
        let folder = try coreAIOnlyFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = ChatSession()
        session.preferredFormat = .coreML
        await session.load(folder: folder)
        #expect(!session.isReady)
        #expect(session.status.contains("the folder holds no Core ML model (export.json formats: coreai)"), "\(session.status)")
    }
}
