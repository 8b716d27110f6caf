/// What a fake model's cache holds: the token at each position, -1 where nothing was written.
/// Written as a real cache is: prefill, decode and verify write positions p, p+1, ..., their
/// padding (id 0) included, so a row can be made to depend on every slot at or before it.
struct FedTokens {
    let contextLength: Int
    private(set) var tokens: [Int]

    init(contextLength: Int) {
        self.contextLength = contextLength
        tokens = Array(repeating: -1, count: contextLength)
    }

    mutating func reset() { tokens = Array(repeating: -1, count: contextLength) }

    /// Writes `written` (then padding up to `length`) from `position` on; the positions of the real tokens.
    mutating func write(_ written: [Int32], at position: Int, paddedTo length: Int) -> Range<Int> {
        let padded = written.map(Int.init) + Array(repeating: 0, count: max(length - written.count, 0))
        for (i, token) in padded.enumerated() where position + i < contextLength { tokens[position + i] = token }
        return position..<(position + written.count)
    }

    /// Whether a verify call of `count` tokens at `position` is legal: a padded call past the context
    /// would write outside a real cache.
    func verifyFits(_ count: Int, at position: Int, verifyLength: Int) -> Bool {
        verifyLength > 0 && count <= verifyLength && position + verifyLength <= contextLength
    }
}
