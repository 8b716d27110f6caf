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
    /// The token at each cache position; -1 where nothing was written.
    private var fed: [Int]
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
        fed = Array(repeating: -1, count: golden.context_length)
    }

    func reset() throws {
        fed = Array(repeating: -1, count: contextLength)
    }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        prefillCalls += 1
        return LogitRows(write(tokens, at: position, paddedTo: prefillLength))
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        decodeCalls += 1
        return write([token], at: position, paddedTo: 1)[0]
    }

    func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        guard verifyLength > 0, tokens.count <= verifyLength, position + verifyLength <= contextLength else {
            throw GenerationError.modelOutput("verify misused")
        }
        verifyCalls += 1
        return LogitRows(write(tokens, at: position, paddedTo: verifyLength))
    }

    /// Writes the tokens (then id-0 padding) from `position` on and returns the rows of the real tokens.
    private func write(_ tokens: [Int32], at position: Int, paddedTo length: Int) -> [[Float]] {
        let padded = tokens.map(Int.init) + Array(repeating: 0, count: max(length - tokens.count, 0))
        for (i, token) in padded.enumerated() where position + i < contextLength { fed[position + i] = token }
        return tokens.indices.map { row(after: position + $0) }
    }

    private func row(after position: Int) -> [Float] {
        let context = fed[...position]
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
