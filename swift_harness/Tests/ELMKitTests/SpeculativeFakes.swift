import ELMKit

/// A model whose logits after position q depend on every token at positions 0...q, as a real
/// model's do (so a stale or misplaced cache entry shows), with a verify function. Its favourite
/// next token follows a cycle, so prompt lookup finds repeats, but the other tokens keep enough
/// weight for sampling to leave the cycle now and then.
final class ContextHashModel: LanguageModel {
    enum Call: Equatable {
        case prefill(position: Int, count: Int)
        case decode(token: Int32, position: Int)
        case verify(tokens: [Int32], position: Int)
    }

    let contextLength: Int
    let prefillLength: Int
    let vocabularySize: Int
    let verifyLength: Int
    /// False: prefill gives no rows, as an ane export's.
    let prefillGivesLogits: Bool
    /// Shifts the favourite, so a second instance drafts differently from the first.
    private let offset: Int
    private var fed: FedTokens
    private(set) var calls: [Call] = []

    init(contextLength: Int = 96, prefillLength: Int = 8, vocabularySize: Int = 16, verifyLength: Int = 4, offset: Int = 0,
         prefillGivesLogits: Bool = true) {
        self.contextLength = contextLength
        self.prefillGivesLogits = prefillGivesLogits
        self.prefillLength = prefillLength
        self.vocabularySize = vocabularySize
        self.verifyLength = verifyLength
        self.offset = offset
        fed = FedTokens(contextLength: contextLength)
    }

    func reset() throws { fed.reset() }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        calls.append(.prefill(position: position, count: tokens.count))
        let written = fed.write(tokens, at: position, paddedTo: prefillLength)
        return prefillGivesLogits ? LogitRows(written.map(row(after:))) : .none
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        calls.append(.decode(token: token, position: position))
        return row(after: fed.write([token], at: position, paddedTo: 1).lowerBound)
    }

    struct Misuse: Error {}

    func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        guard fed.verifyFits(tokens.count, at: position, verifyLength: verifyLength) else { throw Misuse() }
        calls.append(.verify(tokens: tokens, position: position))
        return LogitRows(fed.write(tokens, at: position, paddedTo: verifyLength).map(row(after:)))
    }

    private func row(after position: Int) -> [Float] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a over the context
        for token in fed.tokens[...position] { hash = (hash ^ UInt64(bitPattern: Int64(token))) &* 0x100_0000_01B3 }
        var random = SplitMix64(seed: hash)
        let favourite = (fed.tokens[position] * 5 + 3 + offset) % vocabularySize
        return (0..<vocabularySize).map { Float(random.nextUnit() * 2) + ($0 == favourite ? 3 : 0) }
    }
}

/// Drafts what a `ScriptedLanguageModel` with the same script will predict: every draft is accepted.
final class ScriptDrafter: Drafter {
    let name = "script"
    private let script: (Int) -> Int
    private(set) var requests: [(contextCount: Int, count: Int)] = []

    init(script: @escaping (Int) -> Int) { self.script = script }

    func draft(context: [Int], count: Int) -> [Int] {
        requests.append((context.count, count))
        return (0..<count).map { script(context.count - 1 + $0) }
    }
}
