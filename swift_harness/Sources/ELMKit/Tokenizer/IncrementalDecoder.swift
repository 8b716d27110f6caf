/// Turns a growing list of token ids into text deltas for streaming output.
///
/// Decoding token by token would break characters spelled in several byte tokens and would
/// lose the decoder's context (the leading space a word token carries), so each step decodes a
/// short window and emits only what the newest token added; text ending in an incomplete
/// UTF-8 sequence (U+FFFD) is held back until the next token completes it.
public struct IncrementalDecoder {
    private let tokenizer: Tokenizer
    private var ids: [Int] = []
    private var prefixOffset = 0
    private var readOffset = 0
    /// Everything returned so far.
    public private(set) var emitted = ""

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The new text that `id` completes (possibly empty).
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let before = tokenizer.decode(Array(ids[prefixOffset..<readOffset])).unicodeScalars
        let after = tokenizer.decode(Array(ids[prefixOffset...])).unicodeScalars
        guard after.count > before.count, after.last != "\u{FFFD}",
              after.starts(with: before) else { return "" }
        var delta = String.UnicodeScalarView()
        delta.append(contentsOf: after.dropFirst(before.count))
        prefixOffset = readOffset
        readOffset = ids.count
        emitted += String(delta)
        return String(delta)
    }

    /// Whatever is still held back (e.g. a byte sequence that never completed), once generation ends.
    public mutating func finish() -> String {
        let full = tokenizer.decode(ids).unicodeScalars
        let done = emitted.unicodeScalars
        guard full.count > done.count, full.starts(with: done) else { return "" }
        var rest = String.UnicodeScalarView()
        rest.append(contentsOf: full.dropFirst(done.count))
        emitted += String(rest)
        return String(rest)
    }
}
