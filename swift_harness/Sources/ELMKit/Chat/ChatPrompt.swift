/// A conversation turned into prompt tokens with an export's chat template: what elm-run --chat
/// and the chat app send to the model.
///
/// The rendered text is encoded with BOS in front when the export's tokenizer adds it (export.json
/// `tokenizer.add_bos`), as Apple's generate_openelm.py encodes prompts and as OpenELM-Instruct was
/// tuned (TRL prepends BOS); OpenELM's template writes no `bos_token` itself. elm-run (Python) does
/// the same.
public struct ChatPrompt: Sendable {
    public let template: ChatTemplate
    /// The strings the template gets as bos_token and eos_token.
    public let bosToken: String
    public let eosToken: String
    /// Whether the encoded prompt starts with BOS (the tokenizer's post-processor adds it).
    public let addBOS: Bool

    public init(template: ChatTemplate, bosToken: String, eosToken: String, addBOS: Bool = true) {
        self.template = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.addBOS = addBOS
    }

    /// The export's chat template (export.json's `generation.chat_template`), nil for an export
    /// without one (a base model). The BOS and EOS strings come from export.json, else from the
    /// tokenizer's BOS and EOS tokens.
    public static func forExport(_ manifest: ExportManifest, tokenizer: Tokenizer?) throws -> ChatPrompt? {
        guard let generation = manifest.generation, let source = generation.chatTemplate else { return nil }
        func token(_ id: Int?) -> String? { id.flatMap { tokenizer?.tokenString(for: $0) } }
        return ChatPrompt(template: try ChatTemplate(source: source),
                          bosToken: generation.bosToken ?? token(manifest.bosTokenId ?? tokenizer?.bosTokenId) ?? "",
                          eosToken: generation.eosToken ?? token(manifest.eosTokenId ?? tokenizer?.eosTokenId) ?? "",
                          addBOS: manifest.tokenizer?.addBOS ?? true)
    }

    /// The prompt text for `turns`, with the assistant's reply opened.
    public func text(for turns: [ChatTurn]) throws -> String {
        try template.render(messages: turns, addGenerationPrompt: true, bosToken: bosToken, eosToken: eosToken)
    }

    /// The prompt tokens for `turns`, at most `budget` of them where dropping old turns can make it
    /// so: the oldest exchange goes first (a leading system turn stays, and the newest turn always).
    public func tokens(for turns: [ChatTurn], tokenizer: Tokenizer, budget: Int) throws -> [Int] {
        var kept = turns
        while true {
            let tokens = tokenizer.encode(try text(for: kept), addBOS: addBOS)
            let first = kept.first?.role == "system" ? 1 : 0
            guard tokens.count > budget, kept.count - first > 1 else { return tokens }
            kept.remove(at: first)
            // Drop the reply with its question, so the conversation still starts with the user.
            if kept.count - first > 1, kept[first].role == "assistant" { kept.remove(at: first) }
        }
    }
}
