import ELMKit
import Foundation

/// elm-run --chat: each line read from stdin is a user turn; the whole conversation is rendered
/// with the export's chat template and the reply streams to stdout, followed by its stats line.
@available(macOS 15.0, iOS 18.0, *)
enum ChatLoop {
    static func run(_ session: RunSession, chat: ChatPrompt) async throws {
        Runner.log("Chatting with \(session.manifest.name): type a message and press return; Ctrl-D ends.")
        let contextLength = session.manifest.contextLength
        // Room for the reply, unless that would leave the conversation less than half the context.
        let budget = max(contextLength - session.options.maxNewTokens, contextLength / 2)
        var turns: [ChatTurn] = []
        var loadSeconds = session.loadSeconds  // reported with the first reply only
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine() else { break }
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            turns.append(ChatTurn(role: "user", content: line))
            let prompt = try chat.tokens(for: turns, tokenizer: session.tokenizer, budget: budget)
            let result = try await session.generate(prompt, loadSeconds: loadSeconds)
            loadSeconds = 0
            print("")
            print(session.statsLine(result))
            turns.append(ChatTurn(role: "assistant", content: result.text))
        }
    }
}
