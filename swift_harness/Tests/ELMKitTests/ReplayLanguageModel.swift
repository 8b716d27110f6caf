import ELMKit

/// A language model that plays back logits Python recorded from the reference model, and checks
/// that it is driven with exactly the calls (function, position, tokens) Python expected.
final class ReplayLanguageModel: LanguageModel {
    struct UnexpectedCall: Error, CustomStringConvertible {
        let description: String
    }

    let contextLength: Int
    let prefillLength: Int
    let vocabularySize: Int
    private let calls: [ReplayGolden.Call]
    private(set) var nextCall = 0

    init(_ golden: ReplayGolden) {
        contextLength = golden.context_length
        prefillLength = golden.prefill_length
        vocabularySize = golden.vocab_size
        calls = golden.calls
    }

    var allCallsReplayed: Bool { nextCall == calls.count }

    func reset() throws { nextCall = 0 }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        LogitRows(try replay("prefill", tokens: tokens, position: position))
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        try replay("decode", tokens: [token], position: position)[0]
    }

    private func replay(_ function: String, tokens: [Int32], position: Int) throws -> [[Float]] {
        let got = "\(function)(tokens: \(tokens), position: \(position))"
        guard nextCall < calls.count else { throw UnexpectedCall(description: "extra call \(got)") }
        let call = calls[nextCall]
        guard call.function == function, call.position == position, call.tokens == tokens.map(Int.init) else {
            throw UnexpectedCall(description: "call #\(nextCall) was \(got), Python expected \(call.function)(tokens: \(call.tokens), position: \(call.position))")
        }
        nextCall += 1
        // Only the top logits were recorded; the rest can never win, so they are -inf.
        return call.rows.map { row in
            var logits = [Float](repeating: -.infinity, count: vocabularySize)
            for (id, value) in zip(row.ids, row.values) { logits[id] = value }
            return logits
        }
    }
}
