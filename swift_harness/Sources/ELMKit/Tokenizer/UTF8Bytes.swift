/// Byte-level helpers. The tokenizer works on UTF-8 bytes and Unicode scalars, never on Swift
/// `Character`s: Hugging Face splits text per scalar, and grapheme clusters (emoji ZWJ sequences,
/// combining accents) would glue several scalars into one symbol.
enum UTF8Bytes {
    /// Bytes of the scalar that starts with `lead` (input is valid UTF-8, it comes from a Swift String).
    @inline(__always)
    static func scalarLength(lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: return 1
        case 0xC0..<0xE0: return 2
        case 0xE0..<0xF0: return 3
        default: return 4
        }
    }

    /// Start offsets of each scalar in `bytes`.
    static func scalarStarts(_ bytes: [UInt8]) -> [Int] {
        var starts: [Int] = []
        starts.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            starts.append(i)
            i += scalarLength(lead: bytes[i])
        }
        return starts
    }

    /// Every non-overlapping occurrence of `pattern` replaced by `replacement`, left to right.
    static func replacing(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == pattern[0], i + pattern.count <= bytes.count,
               bytes[i..<i + pattern.count].elementsEqual(pattern) {
                out.append(contentsOf: replacement)
                i += pattern.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    static func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
