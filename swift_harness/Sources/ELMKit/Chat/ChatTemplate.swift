/// One message of a conversation, as chat templates see it: `messages[i]['role']` and `['content']`.
public struct ChatTurn: Sendable, Equatable {
    /// "system", "user" or "assistant".
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A Hugging Face chat template (the Jinja string in tokenizer_config.json, copied into
/// export.json's `generation.chat_template`), rendered exactly as `transformers`'
/// `apply_chat_template` renders it: Jinja2 with trim_blocks and lstrip_blocks.
///
/// A small interpreter of the Jinja subset chat templates use: text, `{{ }}`, `{% for %}` (with
/// `loop`), `{% if %}`/`elif`/`else`, `{% set %}`, literals, `+ - ~`, comparisons, `and or not
/// in`, subscripts, attributes, the filters trim, length, upper and lower, and
/// `raise_exception(msg)`. Anything else fails when the template is read, naming the construct and
/// its line, rather than rendering something different from Python.
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [TemplateNode]

    public init(source: String) throws {
        self.source = source
        var lexer = TemplateLexer(source: source)
        var parser = TemplateParser(pieces: try lexer.pieces())
        nodes = try parser.parseTemplate()
    }

    /// The prompt text for `messages`; `addGenerationPrompt` appends what opens the assistant's
    /// reply. `bosToken` and `eosToken` are the strings the template may write ("<s>", "</s>").
    public func render(messages: [ChatTurn], addGenerationPrompt: Bool, bosToken: String, eosToken: String) throws -> String {
        let list = messages.map { TemplateValue.dictionary([("role", .string($0.role)), ("content", .string($0.content))]) }
        let globals: [String: TemplateValue] = [
            "messages": .list(list),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        var renderer = TemplateRenderer(globals: globals)
        return try renderer.render(nodes)
    }
}

/// Why a chat template could not be read or rendered.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// A syntax error, or a construct this interpreter does not support, at a template line.
    case syntax(String, line: Int)
    /// A variable used where jinja2 fails on undefined values (`+`, `<`, a subscript).
    case undefined(String, line: Int)
    /// An operation on values of the wrong type (Python's TypeError).
    case type(String, line: Int)
    /// The template called `raise_exception(message)`.
    case raised(String)

    public var description: String {
        switch self {
        case .syntax(let message, let line): return "chat template line \(line): \(message)"
        case .undefined(let name, let line): return "chat template line \(line): '\(name)' is undefined"
        case .type(let message, let line): return "chat template line \(line): \(message)"
        case .raised(let message): return "the chat template refused the conversation: \(message)"
        }
    }
}
