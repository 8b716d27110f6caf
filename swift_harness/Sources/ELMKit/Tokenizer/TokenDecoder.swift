/// The decoder chain of a tokenizer.json, turning token strings back into text.
/// Tokens travel as UTF-8 bytes so that no step compares or normalizes Swift Strings.
enum TokenDecoder: Sendable {
    case replace(pattern: [UInt8], content: [UInt8])
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case sequence([TokenDecoder])

    static func parse(_ value: JSONValue?, source: String, path: String = "decoder") throws -> TokenDecoder? {
        guard let value, !value.isNull else { return nil }
        let fields = try JSONFields(value, path: path)
        let type = try fields.string("type")
        switch type {
        case "Replace":
            return .replace(pattern: try Normalizer.stringPattern(fields, source: source),
                            content: Array(try fields.string("content").utf8))
        case "ByteFallback":
            return .byteFallback
        case "Fuse":
            return .fuse
        case "Strip":
            let content = try fields.string("content")
            guard content.unicodeScalars.count == 1, let scalar = content.unicodeScalars.first else {
                throw JSONFieldError(path: fields.fieldPath("content"), problem: "should be a single character")
            }
            return .strip(content: scalar, start: try fields.int("start"), stop: try fields.int("stop"))
        case "Sequence":
            let itemsPath = fields.fieldPath("decoders")
            return .sequence(try fields.array("decoders").enumerated().map { i, item in
                guard let step = try parse(item, source: source, path: "\(itemsPath)[\(i)]") else {
                    throw JSONFieldError.wrongType("\(itemsPath)[\(i)]", expected: "a decoder object", found: item)
                }
                return step
            })
        default:
            throw TokenizerError.unsupported(source, "decoder type '\(type)' (at \(path))")
        }
    }

    /// HF's `decode_chain`: tokens in, tokens out.
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        switch self {
        case .replace(let pattern, let content):
            return tokens.map { UTF8Bytes.replacing(pattern, with: content, in: $0) }
        case .byteFallback:
            return Self.fuseByteTokens(tokens)
        case .fuse:
            return [tokens.flatMap { $0 }]
        case .strip(let content, let start, let stop):
            return tokens.map { Self.strip($0, content: content, start: start, stop: stop) }
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// Runs of <0xXX> tokens become their bytes when those form valid UTF-8; otherwise every byte
    /// of the run becomes one U+FFFD (HF's rule, which differs from a lossy UTF-8 decode).
    private static func fuseByteTokens(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var output: [[UInt8]] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if String(validating: pending, as: UTF8.self) != nil {
                output.append(pending)
            } else {
                output.append(contentsOf: Array(repeating: Array("\u{FFFD}".utf8), count: pending.count))
            }
            pending.removeAll()
        }
        for token in tokens {
            if let byte = byteValue(token) {
                pending.append(byte)
            } else {
                flush()
                output.append(token)
            }
        }
        flush()
        return output
    }

    /// The byte of a "<0xXX>" token: six bytes, hex parsed like Rust's `u8::from_str_radix` (which takes a '+').
    static func byteValue(_ token: [UInt8]) -> UInt8? {
        guard token.count == 6, token[0] == UInt8(ascii: "<"), token[1] == UInt8(ascii: "0"),
              token[2] == UInt8(ascii: "x"), token[5] == UInt8(ascii: ">") else { return nil }
        let digits = token[3] == UInt8(ascii: "+") ? [token[4]] : [token[3], token[4]]
        guard let value = UInt8(UTF8Bytes.string(Array(digits)), radix: 16),
              digits.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
        else { return nil }
        return value
    }

    /// Removes up to `start` leading and `stop` trailing copies of `content`.
    private static func strip(_ token: [UInt8], content: Unicode.Scalar, start: Int, stop: Int) -> [UInt8] {
        let scalars = Array(UTF8Bytes.string(token).unicodeScalars)
        var from = 0
        while from < min(start, scalars.count), scalars[from] == content { from += 1 }
        var to = scalars.count
        while scalars.count - to < stop, to > from, scalars[to - 1] == content { to -= 1 }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[from..<to])
        return Array(String(out).utf8)
    }
}
