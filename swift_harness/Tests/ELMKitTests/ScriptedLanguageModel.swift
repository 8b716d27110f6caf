import ELMKit

/// A fake model whose "prediction" after the token at position p is `script(p)`, recording every
/// call. Given a `verifyLength`, it verifies too (one prediction per given token).
final class ScriptedLanguageModel: LanguageModel {
    enum Call: Equatable {
        case reset
        case prefill(tokens: [Int32], position: Int)
        case decode(token: Int32, position: Int)
        case verify(tokens: [Int32], position: Int)
    }

    let contextLength: Int
    let prefillLength: Int
    let vocabularySize: Int
    let verifyLength: Int
    /// Extra entries past the vocabulary in each row (as a padded Core ML layout has).
    let rowPadding: Int
    private let script: (Int) -> Int
    private(set) var calls: [Call] = []

    init(contextLength: Int, prefillLength: Int, vocabularySize: Int = 32, rowPadding: Int = 0, verifyLength: Int = 0,
         script: @escaping (Int) -> Int) {
        self.verifyLength = verifyLength
        self.contextLength = contextLength
        self.prefillLength = prefillLength
        self.vocabularySize = vocabularySize
        self.rowPadding = rowPadding
        self.script = script
    }

    func reset() throws { calls.append(.reset) }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        calls.append(.prefill(tokens: tokens, position: position))
        return LogitRows(tokens.indices.map { row(predicting: script(position + $0)) })
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        calls.append(.decode(token: token, position: position))
        return row(predicting: script(position))
    }

    func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        guard verifyLength > 0, tokens.count <= verifyLength, position + verifyLength <= contextLength else {
            throw GenerationError.modelOutput("verify misused")
        }
        calls.append(.verify(tokens: tokens, position: position))
        return LogitRows(tokens.indices.map { row(predicting: script(position + $0)) })
    }

    private func row(predicting token: Int) -> [Float] {
        var logits = [Float](repeating: 0, count: vocabularySize + rowPadding)
        logits[token] = 10
        if rowPadding > 0 { logits[vocabularySize] = 100 }  // must be ignored: beyond the vocabulary
        return logits
    }
}
