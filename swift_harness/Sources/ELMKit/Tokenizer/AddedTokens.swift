/// A token from `added_tokens` (such as <s>): matched literally in the input before BPE runs.
struct AddedToken: Sendable {
    let id: Int
    /// The content as written in tokenizer.json (what decides whether a token string is special).
    let content: [UInt8]
    /// What is matched and what decoding yields: for a `normalized` token, HF normalizes the
    /// content first ("hello" → "▁hello" with LLaMA's normalizer), so it also decodes that way.
    private(set) var text: [UInt8]
    let singleWord: Bool
    let leftStrip: Bool
    let rightStrip: Bool
    /// Matched in the normalized text (true) or in the raw input (false, the usual case for specials).
    let normalized: Bool
    let special: Bool

    init(_ fields: JSONFields) throws {
        id = try fields.int("id")
        content = Array(try fields.string("content").utf8)
        text = content
        singleWord = try fields.bool("single_word", default: false)
        leftStrip = try fields.bool("lstrip", default: false)
        rightStrip = try fields.bool("rstrip", default: false)
        normalized = try fields.bool("normalized", default: true)
        special = try fields.bool("special", default: false)
    }

    func normalized(by normalizer: Normalizer?) -> AddedToken {
        guard normalized, let normalizer else { return self }
        var token = self
        token.text = normalizer.apply(content)
        return token
    }
}

/// A stretch of input: either text still to tokenize, or an added token already recognised.
enum TextSegment {
    case text([UInt8])
    case token(Int)
}

/// Splits text around added tokens the way Hugging Face's AddedVocabulary does: leftmost-longest
/// matches, honouring single_word / lstrip / rstrip.
struct AddedTokenSplitter: Sendable {
    private let tokens: [AddedToken]

    init(_ tokens: [AddedToken]) {
        // Longest first, so the first match found at a position is the longest one.
        self.tokens = tokens.filter { !$0.text.isEmpty }.sorted { $0.text.count > $1.text.count }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The pieces of `text` in order; empty text pieces are dropped, as HF drops empty splits.
    func split(_ text: [UInt8]) -> [TextSegment] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text)] }
        var segments: [TextSegment] = []
        var emittedUpTo = 0
        var searchFrom = 0
        while let (token, matchStart) = nextMatch(in: text, from: searchFrom) {
            let matchEnd = matchStart + token.text.count
            searchFrom = matchEnd
            if token.singleWord {
                let wordBefore = matchStart > 0 && Self.isWordCharacter(Self.lastScalar(text[..<matchStart]))
                let wordAfter = matchEnd < text.count && Self.isWordCharacter(Self.firstScalar(text[matchEnd...]))
                if wordBefore || wordAfter { continue }
            }
            var start = matchStart
            var end = matchEnd
            if token.leftStrip {
                // Earlier matches may already have taken those spaces.
                start = max(Self.whitespaceRunStart(text, before: matchStart), emittedUpTo)
            }
            if token.rightStrip {
                end = Self.whitespaceRunEnd(text, after: matchEnd)
            }
            if emittedUpTo < start { segments.append(.text(Array(text[emittedUpTo..<start]))) }
            segments.append(.token(token.id))
            emittedUpTo = end
        }
        if emittedUpTo < text.count { segments.append(.text(Array(text[emittedUpTo...]))) }
        return segments
    }

    private func nextMatch(in text: [UInt8], from: Int) -> (AddedToken, Int)? {
        var position = from
        while position < text.count {
            let byte = text[position]
            for token in tokens where token.text[0] == byte && position + token.text.count <= text.count {
                if text[position..<position + token.text.count].elementsEqual(token.text) {
                    return (token, position)
                }
            }
            position += 1
        }
        return nil
    }

    private static func lastScalar(_ bytes: ArraySlice<UInt8>) -> Unicode.Scalar? {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.last
    }

    private static func firstScalar(_ bytes: ArraySlice<UInt8>) -> Unicode.Scalar? {
        String(decoding: bytes.prefix(4), as: UTF8.self).unicodeScalars.first
    }

    /// The regex class `\w` HF tests with: alphabetic, marks, decimal digits, connector punctuation, joiners.
    private static func isWordCharacter(_ scalar: Unicode.Scalar?) -> Bool {
        guard let scalar else { return false }
        let p = scalar.properties
        return p.isAlphabetic || p.isJoinControl || [
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation,
        ].contains(p.generalCategory)
    }

    private static func whitespaceRunStart(_ text: [UInt8], before end: Int) -> Int {
        let scalars = Array(String(decoding: text[..<end], as: UTF8.self).unicodeScalars)
        var start = end
        for scalar in scalars.reversed() {
            guard scalar.properties.isWhitespace else { break }
            start -= UTF8.width(scalar)
        }
        return start
    }

    private static func whitespaceRunEnd(_ text: [UInt8], after start: Int) -> Int {
        var end = start
        for scalar in String(decoding: text[start...], as: UTF8.self).unicodeScalars {
            guard scalar.properties.isWhitespace else { break }
            end += UTF8.width(scalar)
        }
        return end
    }
}
