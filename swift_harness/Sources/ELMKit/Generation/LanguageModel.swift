/// A causal language model with a KV cache that `Generator` can drive: chunked prefill, then
/// one token at a time, or several at once by `verify` when speculating. `CoreMLLanguageModel`
/// and `CoreAILanguageModel` are the real ones; tests use scripted models.
public protocol LanguageModel: AnyObject {
    /// Tokens the cache holds.
    var contextLength: Int { get }
    /// Tokens one `prefill` call takes (shorter chunks are padded by the model).
    var prefillLength: Int { get }
    /// Entries of each logits row that are real tokens (rows may be longer, e.g. padded pieces).
    var vocabularySize: Int { get }

    /// Forgets every token seen so far (a fresh KV cache).
    func reset() throws

    /// False for a model whose prefill gives no logits (an ane export, "prompt_opt"): `Generator`
    /// then prefills all of the prompt but its last token and decodes that one for the logits
    /// (see `PromptPlan`). True unless a model says otherwise.
    var prefillGivesLogits: Bool { get }

    /// Feeds `tokens` (1...prefillLength of them) at positions `position`, `position + 1`, ...
    /// and returns one logits row per given token (not for the padding); no rows at all when
    /// `prefillGivesLogits` is false.
    func prefill(tokens: [Int32], position: Int) throws -> LogitRows

    /// Feeds one token at `position` and returns the logits for the token after it.
    func decode(token: Int32, position: Int) throws -> [Float]

    /// Tokens one `verify` call takes (speculative decoding); 0 when the model has no verify function.
    var verifyLength: Int { get }

    /// Feeds `tokens` (1...verifyLength of them) at positions `position`, `position + 1`, ... as
    /// prefill does (the model pads), and returns one logits row per given token: row i is the
    /// prediction after tokens[i]. Every export target gives these rows, ane included.
    func verify(tokens: [Int32], position: Int) throws -> LogitRows
}

extension LanguageModel {
    public var prefillGivesLogits: Bool { true }

    public var verifyLength: Int { 0 }

    public func verify(tokens: [Int32], position: Int) throws -> LogitRows {
        throw GenerationError.verifyUnsupported
    }
}

/// Logits rows read on demand: a prefill chunk yields up to prefillLength × vocabulary scores but
/// the generator needs only the last row, so rows are converted only when asked for.
public struct LogitRows {
    public let count: Int
    private let row: (Int) -> [Float]

    public init(count: Int, row: @escaping (Int) -> [Float]) {
        self.count = count
        self.row = row
    }

    public init(_ rows: [[Float]]) {
        self.init(count: rows.count) { rows[$0] }
    }

    /// No rows: what a prefill without logits (ane) returns.
    public static var none: LogitRows { LogitRows(count: 0) { _ in [] } }

    public subscript(index: Int) -> [Float] {
        precondition(index >= 0 && index < count, "logits row \(index) out of 0..<\(count)")
        return row(index)
    }
}
