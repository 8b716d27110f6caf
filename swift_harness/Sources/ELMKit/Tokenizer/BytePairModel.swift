/// The BPE model of a tokenizer.json: vocabulary, ranked merges, byte fallback and the unknown token.
///
/// `tokenize` follows Hugging Face's `BPE::merge_word` + `Word::merge_all` step for step (same
/// initial symbols, same priority order, same stale-entry check), so ids match `tokenizers` exactly.
struct BytePairModel: Sendable {
    /// Token bytes → id. Keys are bytes, not Strings: see JSONValue on canonical equivalence.
    let vocab: [[UInt8]: Int]
    /// id → token bytes, for the model's own vocabulary.
    let tokens: [Int: [UInt8]]
    private let merges: [UInt64: (rank: Int32, newId: Int32)]
    private let unknownId: Int?
    private let fuseUnknown: Bool
    /// Ids of <0x00>...<0xFF> (nil for any the vocabulary lacks) when byte_fallback is on; nil when off.
    private let byteIds: [Int?]?
    private let continuingSubwordPrefix: [UInt8]?
    private let endOfWordSuffix: [UInt8]?
    private let ignoreMerges: Bool

    init(_ model: JSONFields, source: String) throws {
        let type = try model.optionalString("type") ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(source, "model type '\(type)'") }
        if let dropout = try model.optionalDouble("dropout"), dropout > 0 {
            throw TokenizerError.unsupported(source, "BPE dropout \(dropout) (it makes encoding random)")
        }

        var vocab: [[UInt8]: Int] = [:]
        var tokens: [Int: [UInt8]] = [:]
        let vocabFields = try model.object("vocab")
        vocab.reserveCapacity(vocabFields.pairs.count)
        for (token, idValue) in vocabFields.pairs {
            guard let id = idValue.intValue, id >= 0 else {
                throw JSONFieldError.wrongType("\(vocabFields.path)[\"\(token)\"]", expected: "a token id (integer ≥ 0)", found: idValue)
            }
            let bytes = Array(token.utf8)
            vocab[bytes] = id
            tokens[id] = bytes
        }
        self.vocab = vocab
        self.tokens = tokens

        continuingSubwordPrefix = (try model.optionalString("continuing_subword_prefix")).map { Array($0.utf8) }
        endOfWordSuffix = (try model.optionalString("end_of_word_suffix")).map { Array($0.utf8) }
        ignoreMerges = try model.bool("ignore_merges", default: false)
        fuseUnknown = try model.bool("fuse_unk", default: false)
        unknownId = (try model.optionalString("unk_token")).flatMap { vocab[Array($0.utf8)] }

        if try model.bool("byte_fallback", default: false) {
            byteIds = (0..<256).map { vocab[Array(Self.byteTokenName($0).utf8)] }
        } else {
            byteIds = nil
        }

        var merges: [UInt64: (rank: Int32, newId: Int32)] = [:]
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        for (rank, entry) in try model.array("merges").enumerated() {
            let (left, right) = try Self.mergePair(entry, rank: rank, source: source)
            guard let leftId = vocab[left] else { throw Self.mergeError(source, rank, left) }
            guard let rightId = vocab[right] else { throw Self.mergeError(source, rank, right) }
            let merged = left + right.dropFirst(prefixLength)
            guard let newId = vocab[merged] else { throw Self.mergeError(source, rank, merged) }
            // A repeated pair keeps its last rank, as HF's map does.
            merges[Self.pairKey(Int32(leftId), Int32(rightId))] = (Int32(rank), Int32(newId))
        }
        self.merges = merges
    }

    /// "<0x0A>": the name of a byte-fallback token (uppercase hex, as HF and SentencePiece write it).
    static func byteTokenName(_ byte: Int) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// A merge written as "a b" (older files) or as ["a", "b"] (newer files).
    private static func mergePair(_ entry: JSONValue, rank: Int, source: String) throws -> ([UInt8], [UInt8]) {
        switch entry {
        case .string(let line):
            let parts = line.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError(source: source, reason: "merge #\(rank + 1) '\(line)' is not two tokens separated by one space")
            }
            return (Array(parts[0]), Array(parts[1]))
        case .array(let items):
            guard items.count == 2, let a = items[0].stringValue, let b = items[1].stringValue else {
                throw TokenizerError(source: source, reason: "merge #\(rank + 1) is not a pair of two strings")
            }
            return (Array(a.utf8), Array(b.utf8))
        default:
            throw TokenizerError(source: source, reason: "merge #\(rank + 1) should be a string or a pair but is \(entry.kindDescription)")
        }
    }

    private static func mergeError(_ source: String, _ rank: Int, _ token: [UInt8]) -> TokenizerError {
        TokenizerError(source: source, reason: "merge #\(rank + 1) uses token '\(UTF8Bytes.string(token))', which is not in the vocabulary")
    }

    @inline(__always)
    private static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Symbols of a word being merged: a doubly linked list in an array, as in HF's `Word`.
    private struct Symbol {
        var id: Int32
        var previous: Int32
        var next: Int32
        var byteLength: Int32  // 0 marks a symbol merged into its left neighbour
    }

    /// Token ids of one pre-tokenized piece (already normalized).
    func tokenize(_ word: [UInt8]) -> [Int] {
        guard !word.isEmpty else { return [] }
        if ignoreMerges, let id = vocab[word] { return [id] }
        var symbols = initialSymbols(word)
        mergeAll(&symbols)
        return symbols.compactMap { $0.byteLength == 0 ? nil : Int($0.id) }
    }

    /// One symbol per Unicode scalar; scalars outside the vocabulary become byte tokens, else <unk>.
    private func initialSymbols(_ word: [UInt8]) -> [Symbol] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        func add(_ id: Int, _ length: Int) {
            let count = Int32(symbols.count)
            if count > 0 { symbols[symbols.count - 1].next = count }
            symbols.append(Symbol(id: Int32(id), previous: count - 1, next: -1, byteLength: Int32(length)))
        }
        var pendingUnknown: (id: Int, length: Int)?
        let starts = UTF8Bytes.scalarStarts(word)
        for (n, start) in starts.enumerated() {
            let end = n + 1 < starts.count ? starts[n + 1] : word.count
            var piece = Array(word[start..<end])
            let byteLength = piece.count
            if n > 0, let prefix = continuingSubwordPrefix { piece = prefix + piece }
            if n == starts.count - 1, let suffix = endOfWordSuffix { piece += suffix }

            if let id = vocab[piece] {
                if let unknown = pendingUnknown { add(unknown.id, unknown.length); pendingUnknown = nil }
                add(id, byteLength)
                continue
            }
            if let byteIds {
                let ids = piece.map { byteIds[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    // HF does not flush a pending <unk> here; it is added after the next known piece.
                    for id in ids { add(id!, 1) }
                    continue
                }
            }
            if let unknownId {
                if let unknown = pendingUnknown {
                    if fuseUnknown {
                        pendingUnknown = (unknown.id, unknown.length + byteLength)
                    } else {
                        add(unknown.id, unknown.length)
                        pendingUnknown = (unknownId, byteLength)
                    }
                } else {
                    pendingUnknown = (unknownId, byteLength)
                }
            }
        }
        if let unknown = pendingUnknown { add(unknown.id, unknown.length) }
        return symbols
    }

    private func mergeAll(_ symbols: inout [Symbol]) {
        var queue = MergeQueue(capacity: symbols.count)
        for i in 0..<max(0, symbols.count - 1) {
            if let merge = merges[Self.pairKey(symbols[i].id, symbols[i + 1].id)] {
                queue.push(MergeCandidate(rank: merge.rank, position: Int32(i), newId: merge.newId))
            }
        }
        while let top = queue.pop() {
            let position = Int(top.position)
            let current = symbols[position]
            // Skip entries made stale by earlier merges.
            if current.byteLength == 0 || current.next == -1 { continue }
            let nextPosition = Int(current.next)
            let right = symbols[nextPosition]
            guard let merge = merges[Self.pairKey(current.id, right.id)], merge.newId == top.newId else { continue }

            symbols[position].id = top.newId
            symbols[position].byteLength += right.byteLength
            symbols[position].next = right.next
            symbols[nextPosition].byteLength = 0
            if right.next >= 0 && Int(right.next) < symbols.count {
                symbols[Int(right.next)].previous = Int32(position)
            }

            let merged = symbols[position]
            if merged.previous >= 0 {
                let previous = Int(merged.previous)
                if let pair = merges[Self.pairKey(symbols[previous].id, merged.id)] {
                    queue.push(MergeCandidate(rank: pair.rank, position: Int32(previous), newId: pair.newId))
                }
            }
            if merged.next >= 0 && Int(merged.next) < symbols.count {
                if let pair = merges[Self.pairKey(merged.id, symbols[Int(merged.next)].id)] {
                    queue.push(MergeCandidate(rank: pair.rank, position: top.position, newId: pair.newId))
                }
            }
        }
    }
}
