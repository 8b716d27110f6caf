import ELMKit

/// A model that answers from rows Python recorded per context (golden_speculative.json): it
/// tracks the token fed at each position (prefill, decode and verify write positions p, p+1, ...,
/// padding included, as a real cache is written) and answers the row after position q by looking
/// up the tokens at positions 0...q. Only the top entries were recorded; every other entry is the
/// lowest stored logit - 10. A context Python never saw gets a poison row whose argmax is a token
/// no case uses, so any misuse (a wrong position, a stale cache slot) changes the output.
final class ContextReplayModel: LanguageModel {
    let contextLength: Int
    let prefillLength: Int
    let vocabularySize: Int
    let verifyLength: Int
    private let rows: [String: [[Double]]]
    private let poison: Int
    private var fed: FedTokens
    /// Contexts asked for that Python did not record.
    private(set) var unknownContexts: [String] = []
    private(set) var prefillCalls = 0
    private(set) var decodeCalls = 0
    private(set) var verifyCalls = 0

    init(golden: SpeculativeGolden, rows: [String: [[Double]]], poison: Int, verifies: Bool = true) {
        contextLength = golden.context_length
        prefillLength = golden.prefill_length
        vocabularySize = golden.vocab_size
        verifyLength = verifies ? golden.verify_length : 0
        self.rows = rows
        self.poison = poison
        fed = FedTokens(contextLength: golden.context_length)
    }

    func reset() throws { fed.reset() }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        prefillCalls += 1
        return LogitRows(fed.write(tokens, at: position, paddedTo: prefillLength).map(row(after:)))
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        decodeCalls += 1
        return row(after: fed.write([token], at: position, paddedTo: 1).lowerBound)
    }

    func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        guard fed.verifyFits(tokens.count, at: position, verifyLength: verifyLength) else {
            throw GenerationError.modelOutput("verify misused")
        }
        verifyCalls += 1
        return LogitRows(fed.write(tokens, at: position, paddedTo: verifyLength).map(row(after:)))
    }

    private func row(after position: Int) -> [Float] {
        let context = fed.tokens[...position]
        let key = context.map(String.init).joined(separator: ",")
        guard !context.contains(-1), let entries = rows[key], !entries.isEmpty else {
            unknownContexts.append(key)
            var logits = [Float](repeating: 0, count: vocabularySize)
            logits[poison] = 100
            return logits
        }
        let lowest = entries.map { Float($0[1]) }.min()!
        var logits = [Float](repeating: lowest - 10, count: vocabularySize)
        for entry in entries { logits[Int(entry[0])] = Float(entry[1]) }
        return logits
    }
}
