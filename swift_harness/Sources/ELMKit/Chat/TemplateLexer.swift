/// What the lexer cuts a template into: text (whitespace control already applied) and the
/// tokens of each `{{ }}` and `{% %}` tag. Comments are dropped.
enum TemplatePiece: Sendable {
    case text(String)
    case output([TemplateToken], line: Int)
    case statement([TemplateToken], line: Int)
}

/// Splits a template as jinja2's lexer does with `trim_blocks` and `lstrip_blocks` (what
/// transformers uses): one trailing newline of the source dropped, `\r\n` and `\r` read as `\n`;
/// `{%-`/`{{-`/`{#-` strip all whitespace before the tag and `-%}`/`-}}`/`-#}` all after it; a
/// block or comment tag alone on its line loses the indentation before it (not with `{%+`), and
/// the newline right after `%}` or `#}` is removed (not with `+%}`). `{{ }}` keeps its surroundings.
struct TemplateLexer {
    private let source: [Unicode.Scalar]
    private var position = 0
    private var line = 1
    /// True when the text ahead starts a line (jinja2's `line_starting`): at the start, and after
    /// a tag whose end consumed a newline.
    private var lineStarting = true

    init(source: String) {
        var scalars: [Unicode.Scalar] = []
        var input = Array(source.unicodeScalars)[...]
        while let scalar = input.popFirst() {
            if scalar == "\r" {
                if input.first == "\n" { input.removeFirst() }
                scalars.append("\n")
            } else {
                scalars.append(scalar)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }  // keep_trailing_newline=False
        self.source = scalars
    }

    mutating func pieces() throws -> [TemplatePiece] {
        var pieces: [TemplatePiece] = []
        while position < source.count {
            guard let tagStart = nextTagStart() else {
                pieces.append(.text(String(String.UnicodeScalarView(source[position...]))))
                break
            }
            let kind = source[tagStart + 1]
            let sign: Unicode.Scalar? = tagStart + 2 < source.count && (source[tagStart + 2] == "-" || source[tagStart + 2] == "+")
                ? source[tagStart + 2] : nil
            let text = leadingText(upTo: tagStart, sign: sign, isBlockOrComment: kind != "{")
            if !text.isEmpty { pieces.append(.text(String(String.UnicodeScalarView(text)))) }
            advance(to: tagStart + 2 + (sign == nil ? 0 : 1))
            let tagLine = line
            switch kind {
            case "#": try skipComment()
            case "%": pieces.append(.statement(try tagTokens(endingWith: "%"), line: tagLine))
            default: pieces.append(.output(try tagTokens(endingWith: "}"), line: tagLine))
            }
        }
        return pieces
    }

    /// The first `{{`, `{%` or `{#` at or after the current position.
    private func nextTagStart() -> Int? {
        var i = position
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "{" || source[i + 1] == "%" || source[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    /// The text before a tag, with the tag's whitespace control applied.
    private func leadingText(upTo end: Int, sign: Unicode.Scalar?, isBlockOrComment: Bool) -> ArraySlice<Unicode.Scalar> {
        var text = source[position..<end]
        if sign == "-" {
            while let last = text.last, PythonWhitespace.contains(last) { text.removeLast() }
        } else if sign != "+", isBlockOrComment {
            // lstrip_blocks: only whitespace between the line's start and the tag goes.
            let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? text.startIndex
            let rest = text[lineStart...]
            if lineStart > text.startIndex || lineStarting, !rest.isEmpty, rest.allSatisfy(PythonWhitespace.contains) {
                text = text[..<lineStart]
            }
        }
        return text
    }

    /// `{# ... #}`: skipped, with the same trimming as a block tag.
    private mutating func skipComment() throws {
        let startLine = line
        while position + 1 < source.count {
            if try endOfTag("#") { return }
            advance(to: position + 1)
        }
        throw ChatTemplateError.syntax("missing end of comment tag '#}'", line: startLine)
    }

    /// The tokens of a `{{ }}` (`closer` "}") or `{% %}` (`closer` "%") tag, up to and past its end.
    private mutating func tagTokens(endingWith closer: Unicode.Scalar) throws -> [TemplateToken] {
        var tokens: [TemplateToken] = []
        var brackets: [Unicode.Scalar] = []
        let scanner = ExpressionScanner(source: source)
        while true {
            skipWhitespace()
            guard position < source.count else {
                throw ChatTemplateError.syntax("missing end of tag '\(closer)}'", line: line)
            }
            // jinja2 looks for the tag's end only outside brackets.
            if brackets.isEmpty, try endOfTag(closer) { return tokens }
            let (token, end) = try scanner.token(at: position, line: line)
            if case .symbol(let symbol) = token.kind { try balance(symbol, &brackets) }
            tokens.append(token)
            advance(to: end)
        }
    }

    private func balance(_ symbol: String, _ brackets: inout [Unicode.Scalar]) throws {
        switch symbol {
        case "(": brackets.append(")")
        case "[": brackets.append("]")
        case "{": brackets.append("}")
        case ")", "]", "}":
            guard let expected = brackets.popLast(), String(expected) == symbol else {
                throw ChatTemplateError.syntax("unexpected '\(symbol)'", line: line)
            }
        default: break
        }
    }

    /// Consumes the end of a tag at the current position if it is there: `-X}` then all
    /// whitespace, `+X}` alone, or `X}` and, for blocks and comments (trim_blocks), one newline.
    private mutating func endOfTag(_ closer: Unicode.Scalar) throws -> Bool {
        func at(_ offset: Int, _ scalar: Unicode.Scalar) -> Bool {
            position + offset < source.count && source[position + offset] == scalar
        }
        let trimsNewline = closer != "}"
        if at(0, "-"), at(1, closer), at(2, "}") {
            advance(to: position + 3)
            skipWhitespace()
        } else if trimsNewline, at(0, "+"), at(1, closer), at(2, "}") {
            advance(to: position + 3)
        } else if at(0, closer), at(1, "}") {
            advance(to: position + 2)
            if trimsNewline, at(0, "\n") { advance(to: position + 1) }
        } else {
            return false
        }
        lineStarting = position > 0 && source[position - 1] == "\n"
        return true
    }

    private mutating func skipWhitespace() {
        var end = position
        while end < source.count, PythonWhitespace.contains(source[end]) { end += 1 }
        advance(to: end)
    }

    /// Moves to `end`, counting the newlines passed.
    private mutating func advance(to end: Int) {
        line += source[position..<end].lazy.filter { $0 == "\n" }.count
        position = end
    }
}
