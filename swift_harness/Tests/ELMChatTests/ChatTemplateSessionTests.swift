import ELMChat
import ELMKit
import Foundation
import Testing

/// A model that records the prompt of each generation (every prefill chunk since the last reset)
/// and always predicts token `predicted`.
final class PromptRecordingModel: LanguageModel, @unchecked Sendable {
    let contextLength = 256
    let prefillLength = 8
    let vocabularySize = 8
    let predicted: Int
    private let lock = NSLock()
    private var _prompts: [[Int]] = []

    init(predicted: Int = 4) { self.predicted = predicted }

    var prompts: [[Int]] { lock.withLock { _prompts } }

    func reset() throws { lock.withLock { _prompts.append([]) } }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        lock.withLock { _prompts[_prompts.count - 1] += tokens.map(Int.init) }
        return LogitRows(tokens.map { _ in row() })
    }

    func decode(token: Int32, position: Int) throws -> [Float] { row() }

    private func row() -> [Float] {
        var logits = [Float](repeating: 0, count: vocabularySize)
        logits[predicted] = 10
        return logits
    }
}

@MainActor
@Suite struct ChatTemplateSessionTests {
    /// A template in the tiny tokenizer's alphabet: "a" opens a user turn, "b" an assistant turn.
    let template = "{% for m in messages %}{{ ('a' if m.role == 'user' else 'b') + m.content + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ 'b' }}{% endif %}"

    @Test func everyReplyGetsTheWholeConversationRendered() async throws {
        let model = PromptRecordingModel(predicted: 4)  // "b"
        let tokenizer = try tinyTokenizer()
        let chatPrompt = ChatPrompt(template: try ChatTemplate(source: template), bosToken: "<s>", eosToken: "e")
        let session = ChatSession()
        session.use(Generator(model: model, tokenizer: tokenizer), eosTokenId: 2, chatPrompt: chatPrompt)
        session.sampling = .greedy
        session.maxTokens = 2
        session.send("cd")
        await session.waitUntilIdle()
        let reply = session.messages[1].text
        #expect(reply == tokenizer.decode([4, 4]))
        session.send("c")
        await session.waitUntilIdle()
        // The reply is the assistant's turn; no BOS is added: the template writes what the model
        // needs (as apply_chat_template).
        #expect(model.prompts == [tokenizer.encode("acdeb", addBOS: false), tokenizer.encode("acdeb" + reply + "eaceb", addBOS: false)])
    }

    @Test func withoutATemplateTheNewestMessageIsSentAsText() async throws {
        let model = PromptRecordingModel()
        let tokenizer = try tinyTokenizer()
        let session = ChatSession()
        session.use(Generator(model: model, tokenizer: tokenizer))
        session.maxTokens = 1
        session.send("cd")
        await session.waitUntilIdle()
        session.send("c")
        await session.waitUntilIdle()
        #expect(model.prompts == [tokenizer.encode("cd", addBOS: true), tokenizer.encode("c", addBOS: true)])
    }

    @Test func aTemplateThatRefusesTheConversationShowsTheError() async throws {
        let refusing = try ChatTemplate(source: "{{ raise_exception('no user turns allowed') }}")
        let session = ChatSession()
        session.use(Generator(model: PromptRecordingModel(), tokenizer: try tinyTokenizer()),
                    chatPrompt: ChatPrompt(template: refusing, bosToken: "", eosToken: ""))
        session.send("cd")
        #expect(!session.isGenerating)
        #expect(session.messages.last?.stats?.contains("no user turns allowed") == true)
    }
}
