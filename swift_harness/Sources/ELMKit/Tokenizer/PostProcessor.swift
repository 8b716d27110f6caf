/// The special tokens a TemplateProcessing post-processor puts around a single sequence
/// (LLaMA: "<s> $A", i.e. BOS in front).
struct PostProcessor: Sendable {
    let prefix: [Int]
    let suffix: [Int]

    static let none = PostProcessor(prefix: [], suffix: [])

    static func parse(_ value: JSONValue?, source: String) throws -> PostProcessor {
        guard let value, !value.isNull else { return .none }
        let fields = try JSONFields(value, path: "post_processor")
        let type = try fields.string("type")
        guard type == "TemplateProcessing" else {
            throw TokenizerError.unsupported(source, "post_processor type '\(type)'")
        }
        let specialTokens = try fields.object("special_tokens")
        var prefix: [Int] = []
        var suffix: [Int] = []
        var seenSequence = false
        for (i, piece) in try fields.array("single").enumerated() {
            let piecePath = "post_processor.single[\(i)]"
            let pieceFields = try JSONFields(piece, path: piecePath)
            if pieceFields.optional("Sequence") != nil {
                seenSequence = true
            } else if let special = try pieceFields.optionalObject("SpecialToken") {
                let name = try special.string("id")
                guard let entry = try specialTokens.optionalObject(name) else {
                    throw TokenizerError(source: source, reason: "\(piecePath) uses special token '\(name)', which post_processor.special_tokens does not define")
                }
                let ids = try entry.ints("ids")
                if seenSequence { suffix += ids } else { prefix += ids }
            } else {
                throw JSONFieldError(path: piecePath, problem: "should hold 'Sequence' or 'SpecialToken'")
            }
        }
        return PostProcessor(prefix: prefix, suffix: suffix)
    }
}
