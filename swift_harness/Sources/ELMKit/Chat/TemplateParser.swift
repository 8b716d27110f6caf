/// Builds the node tree from the lexer's pieces: text, `{{ }}` and the supported tags. A tag this
/// interpreter does not know (macro, call, filter, raw, include, ...) is an error naming it.
struct TemplateParser {
    private let pieces: [TemplatePiece]
    private var index = 0

    init(pieces: [TemplatePiece]) { self.pieces = pieces }

    mutating func parseTemplate() throws -> [TemplateNode] {
        let (nodes, end) = try parseBody(until: [], opener: nil)
        if let end { throw ChatTemplateError.syntax("unexpected '{% \(end.name) %}'", line: end.line) }
        return nodes
    }

    /// A `{% name ... %}` tag: its name and the tokens after it.
    private struct Tag {
        let name: String
        var rest: ExpressionParser
        let line: Int
    }

    /// Nodes up to the first tag named in `terminators` (returned), or the end of the template
    /// (an error when a terminator was wanted; `opener` names the tag left open).
    private mutating func parseBody(until terminators: Set<String>, opener: Tag?) throws -> ([TemplateNode], Tag?) {
        var nodes: [TemplateNode] = []
        while index < pieces.count {
            let piece = pieces[index]
            index += 1
            switch piece {
            case .text(let text):
                nodes.append(.text(text))
            case .output(let tokens, let line):
                var parser = ExpressionParser(tokens: tokens, line: line)
                let expression = try parser.parseExpression()
                try parser.expectEnd(of: "{{ }}")
                nodes.append(.output(expression))
            case .statement(let tokens, let line):
                guard case .name(let name)? = tokens.first?.kind else {
                    throw ChatTemplateError.syntax("a tag must start with its name, found '\(tokens.first?.text ?? "nothing")'", line: line)
                }
                let tag = Tag(name: name, rest: ExpressionParser(tokens: Array(tokens.dropFirst()), line: line), line: line)
                if terminators.contains(name) { return (nodes, tag) }
                nodes.append(try parseStatement(tag))
            }
        }
        if let opener {
            let wanted = terminators.sorted().map { "{% \($0) %}" }.joined(separator: " or ")
            throw ChatTemplateError.syntax("'{% \(opener.name) %}' is never closed: missing \(wanted)", line: opener.line)
        }
        return (nodes, nil)
    }

    private mutating func parseStatement(_ tag: Tag) throws -> TemplateNode {
        switch tag.name {
        case "for": return try parseFor(tag)
        case "if": return try parseIf(tag)
        case "set": return try parseSet(tag)
        case "endfor", "endif", "elif", "else":
            throw ChatTemplateError.syntax("unexpected '{% \(tag.name) %}'", line: tag.line)
        default:
            throw ChatTemplateError.syntax("unsupported tag '{% \(tag.name) %}'", line: tag.line)
        }
    }

    /// `{% for name in iterable %} ... [{% else %} ...] {% endfor %}`
    private mutating func parseFor(_ opening: Tag) throws -> TemplateNode {
        var tag = opening
        let variable = try tag.rest.expectName(purpose: "a loop variable")
        if tag.rest.skip(symbol: ",") {
            throw ChatTemplateError.syntax("unpacking several loop variables ('for a, b in ...') is not supported", line: tag.line)
        }
        try tag.rest.expect(keyword: "in")
        // As jinja2: no `x if c else y` here, so a trailing `if` would be a loop filter.
        let iterable = try tag.rest.parseOr()
        if tag.rest.peekKeyword("if") {
            throw ChatTemplateError.syntax("loop filters ('{% for x in xs if ... %}') are not supported", line: tag.line)
        }
        if tag.rest.peekKeyword("recursive") {
            throw ChatTemplateError.syntax("recursive loops are not supported", line: tag.line)
        }
        try tag.rest.expectEnd(of: "{% for %}")
        let (body, end) = try parseBody(until: ["endfor", "else"], opener: opening)
        var otherwise: [TemplateNode] = []
        if let end, end.name == "else" {
            try end.rest.expectEnd(of: "{% else %}")
            (otherwise, _) = try parseBody(until: ["endfor"], opener: opening)
        }
        return .forLoop(variable: variable, iterable: iterable, body: body, otherwise: otherwise)
    }

    /// `{% if c %} ... {% elif c %} ... {% else %} ... {% endif %}`
    private mutating func parseIf(_ opening: Tag) throws -> TemplateNode {
        var branches: [(condition: TemplateExpression, body: [TemplateNode])] = []
        var tag = opening
        while true {
            let condition = try tag.rest.parseOr()
            try tag.rest.expectEnd(of: "{% \(tag.name) %}")
            let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: opening)
            branches.append((condition, body))
            guard let next = end, next.name != "endif" else { return .conditional(branches: branches, otherwise: []) }
            if next.name == "else" {
                try next.rest.expectEnd(of: "{% else %}")
                let (otherwise, _) = try parseBody(until: ["endif"], opener: opening)
                return .conditional(branches: branches, otherwise: otherwise)
            }
            tag = next
        }
    }

    /// `{% set name = value %}`
    private func parseSet(_ opening: Tag) throws -> TemplateNode {
        var tag = opening
        let name = try tag.rest.expectName(purpose: "a variable name")
        if tag.rest.peekSymbol(".") || tag.rest.peekSymbol(",") {
            throw ChatTemplateError.syntax("only '{% set name = value %}' is supported (no namespaces or unpacking)", line: tag.line)
        }
        guard tag.rest.skip(symbol: "=") else {
            throw ChatTemplateError.syntax("block assignments ('{% set name %}...{% endset %}') are not supported", line: tag.line)
        }
        let value = try tag.rest.parseExpression()
        try tag.rest.expectEnd(of: "{% set %}")
        return .assignment(name: name, value: value)
    }
}
