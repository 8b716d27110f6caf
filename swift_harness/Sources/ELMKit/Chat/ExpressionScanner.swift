/// One token inside a tag.
struct TemplateToken: Sendable {
    enum Kind: Sendable, Equatable {
        case name(String)
        case string(String)
        case integer(Int)
        case symbol(String)
    }

    let kind: Kind
    let line: Int

    /// How error messages quote it.
    var text: String {
        switch kind {
        case .name(let name): return name
        case .string(let s): return "'\(s)'"
        case .integer(let n): return String(n)
        case .symbol(let s): return s
        }
    }
}

/// Reads the tokens of jinja2's expression language: names, integers, string literals and operators.
struct ExpressionScanner {
    let source: [Unicode.Scalar]

    /// Jinja2's operators, longest first so `==` is not read as `=` `=`.
    private static let symbols = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
                                  "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"].map { Array($0.unicodeScalars) }

    /// The token at `start` and the index just past it.
    func token(at start: Int, line: Int) throws -> (TemplateToken, Int) {
        let first = source[start]
        if Self.isNameStart(first) {
            var end = start + 1
            while end < source.count, Self.isNameStart(source[end]) || Self.isDigit(source[end]) { end += 1 }
            return (TemplateToken(kind: .name(String(String.UnicodeScalarView(source[start..<end]))), line: line), end)
        }
        if Self.isDigit(first) { return try integer(at: start, line: line) }
        if first == "'" || first == "\"" { return try string(at: start, line: line) }
        for symbol in Self.symbols where source[start...].starts(with: symbol) {
            return (TemplateToken(kind: .symbol(String(String.UnicodeScalarView(symbol))), line: line), start + symbol.count)
        }
        throw ChatTemplateError.syntax("unexpected character '\(first)'", line: line)
    }

    private func integer(at start: Int, line: Int) throws -> (TemplateToken, Int) {
        var end = start
        var digits = ""
        while end < source.count, Self.isDigit(source[end]) || source[end] == "_" {
            if source[end] != "_" { digits.unicodeScalars.append(source[end]) }
            end += 1
        }
        if end + 1 < source.count, source[end] == ".", Self.isDigit(source[end + 1]) {
            throw ChatTemplateError.syntax("float literals are not supported", line: line)
        }
        guard let value = Int(digits) else { throw ChatTemplateError.syntax("integer \(digits) is too large", line: line) }
        return (TemplateToken(kind: .integer(value), line: line), end)
    }

    /// A quoted literal with Python's escapes (jinja2 decodes them with "unicode-escape"); an
    /// unknown escape keeps its backslash, as Python does.
    private func string(at start: Int, line: Int) throws -> (TemplateToken, Int) {
        let quote = source[start]
        var value = String.UnicodeScalarView()
        var i = start + 1
        while i < source.count, source[i] != quote {
            guard source[i] == "\\", i + 1 < source.count else {
                value.append(source[i])
                i += 1
                continue
            }
            let escaped = source[i + 1]
            i += 2
            switch escaped {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\", "'", "\"": value.append(escaped)
            case "a": value.append("\u{07}")
            case "b": value.append("\u{08}")
            case "f": value.append("\u{0C}")
            case "v": value.append("\u{0B}")
            case "\n": break  // a backslash before a newline joins the lines
            case "0"..."7":
                var code = escaped.value - 48
                for _ in 0..<2 where i < source.count && source[i] >= "0" && source[i] <= "7" {
                    code = code * 8 + source[i].value - 48
                    i += 1
                }
                value.append(Unicode.Scalar(code)!)
            case "x", "u", "U":
                let width = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                guard i + width <= source.count,
                      let code = UInt32(String(String.UnicodeScalarView(source[i..<(i + width)])), radix: 16),
                      let scalar = Unicode.Scalar(code) else {
                    throw ChatTemplateError.syntax("bad \\\(escaped) escape in a string literal", line: line)
                }
                value.append(scalar)
                i += width
            default:
                value.append("\\")
                value.append(escaped)
            }
        }
        guard i < source.count else { throw ChatTemplateError.syntax("unterminated string literal", line: line) }
        return (TemplateToken(kind: .string(String(value)), line: line), i + 1)
    }

    private static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
    }

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
}
