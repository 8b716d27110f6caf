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
    /// Shifts the favourite, so a second instance drafts differently from the first.
    private let offset: Int
    private var fed: [Int]
    private(set) var calls: [Call] = []

    init(contextLength: Int = 96, prefillLength: Int = 8, vocabularySize: Int = 16, verifyLength: Int = 4, offset: Int = 0) {
        self.contextLength = contextLength
        self.prefillLength = prefillLength
        self.vocabularySize = vocabularySize
        self.verifyLength = verifyLength
        self.offset = offset
        fed = Array(repeating: -1, count: contextLength)
    }

    func reset() throws { fed = Array(repeating: -1, count: contextLength) }

    func prefill(tokens: [Int32], position: Int) throws -> LogitRows {
        calls.append(.prefill(position: position, count: tokens.count))
        return LogitRows(write(tokens, at: position, paddedTo: prefillLength))
    }

    func decode(token: Int32, position: Int) throws -> [Float] {
        calls.append(.decode(token: token, position: position))
        return write([token], at: position, paddedTo: 1)[0]
    }

    struct Misuse: Error {}

    func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        // A padded call past the context would write outside a real cache.
        guard verifyLength > 0, tokens.count <= verifyLength, position + verifyLength <= contextLength else { throw Misuse() }
        calls.append(.verify(tokens: tokens, position: position))
        return LogitRows(write(tokens, at: position, paddedTo: verifyLength))
    }

    private func write(_ tokens: [Int32], at position: Int, paddedTo length: Int) -> [[Float]] {
        let padded = tokens.map(Int.init) + Array(repeating: 0, count: max(length - tokens.count, 0))
        for (i, token) in padded.enumerated() where position + i < contextLength { fed[position + i] = token }
        return tokens.indices.map { row(after: position + $0) }
    }

    private func row(after position: Int) -> [Float] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a over the context
        for token in fed[...position] { hash = (hash ^ UInt64(bitPattern: Int64(token))) &* 0x100_0000_01B3 }
        var random = SplitMix64(seed: hash)
        let favourite = (fed[position] * 5 + 3 + offset) % vocabularySize
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
