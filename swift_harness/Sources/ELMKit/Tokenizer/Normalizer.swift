/// The text normalizers of a tokenizer.json that LLaMA-style tokenizers use, applied to UTF-8 bytes.
enum Normalizer: Sendable {
    case prepend([UInt8])
    case replace(pattern: [UInt8], content: [UInt8])
    case sequence([Normalizer])

    /// nil when the file has no normalizer (`"normalizer": null`).
    static func parse(_ value: JSONValue?, source: String, path: String = "normalizer") throws -> Normalizer? {
        guard let value, !value.isNull else { return nil }
        let fields = try JSONFields(value, path: path)
        let type = try fields.string("type")
        switch type {
        case "Prepend":
            return .prepend(Array(try fields.string("prepend").utf8))
        case "Replace":
            return .replace(pattern: try stringPattern(fields, source: source), content: Array(try fields.string("content").utf8))
        case "Sequence":
            let items = try fields.array("normalizers")
            return .sequence(try items.enumerated().map { i, item in
                let itemPath = "\(fields.fieldPath("normalizers"))[\(i)]"
                guard let step = try parse(item, source: source, path: itemPath) else {
                    throw JSONFieldError.wrongType(itemPath, expected: "a normalizer object", found: item)
                }
                return step
            })
        default:
            throw TokenizerError.unsupported(source, "normalizer type '\(type)' (at \(path))")
        }
    }

    /// The literal of a Replace pattern ({"String": "..."}); regex patterns are refused.
    static func stringPattern(_ fields: JSONFields, source: String) throws -> [UInt8] {
        let pattern = try fields.object("pattern")
        if let literal = try pattern.optionalString("String") { return Array(literal.utf8) }
        throw TokenizerError.unsupported(source, "a Replace pattern other than a plain string (at \(pattern.path))")
    }

    func apply(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .prepend(let prefix):
            return bytes.isEmpty ? bytes : prefix + bytes  // as HF: empty pieces stay empty
        case .replace(let pattern, let content):
            return UTF8Bytes.replacing(pattern, with: content, in: bytes)
        case .sequence(let steps):
            return steps.reduce(bytes) { $1.apply($0) }
        }
    }
}
