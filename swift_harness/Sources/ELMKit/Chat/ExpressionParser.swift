/// Parses the tokens of one tag into an expression, with jinja2's precedence (loosest first):
/// `x if c else y`, `or`, `and`, `not`, comparisons and `in`, `+ -`, `~`, `* // %`, then unary
/// `-` and primaries with their `.name`, `[key]`, `[a:b]`, `(args)`, `| filter` and `is test`
/// suffixes. `/`, `**`, dict literals, tuples, slice steps and calls other than
/// `raise_exception` are errors naming the construct.
struct ExpressionParser {
    private let tokens: [TemplateToken]
    private var index = 0
    /// The tag's line, for errors at its end.
    private let line: Int

    init(tokens: [TemplateToken], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    // MARK: - Expressions, loosest first

    mutating func parseExpression() throws -> TemplateExpression {
        var value = try parseOr()
        while skip(keyword: "if") {
            let condition = try parseOr()
            let otherwise = skip(keyword: "else") ? try parseExpression() : nil
            value = .conditional(value: value, condition: condition, otherwise: otherwise)
        }
        return value
    }

    mutating func parseOr() throws -> TemplateExpression {
        var left = try parseAnd()
        while skip(keyword: "or") { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws -> TemplateExpression {
        var left = try parseNot()
        while skip(keyword: "and") { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws -> TemplateExpression {
        if skip(keyword: "not") { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> TemplateExpression {
        let line = currentLine
        let first = try parseSum()
        var rest: [(ComparisonOperator, TemplateExpression)] = []
        while true {
            if case .symbol(let s)? = current?.kind, let op = ComparisonOperator(rawValue: s), op != .contains {
                index += 1
                rest.append((op, try parseSum()))
            } else if skip(keyword: "in") {
                rest.append((.contains, try parseSum()))
            } else if peekKeyword("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                index += 2
                rest.append((.notContains, try parseSum()))
            } else {
                break
            }
        }
        return rest.isEmpty ? first : .comparison(first, rest, line: line)
    }

    private mutating func parseSum() throws -> TemplateExpression {
        var left = try parseConcatenation()
        while case .symbol(let s)? = current?.kind, s == "+" || s == "-" {
            let line = currentLine
            index += 1
            left = .binary(s == "+" ? .add : .subtract, left, try parseConcatenation(), line: line)
        }
        return left
    }

    private mutating func parseConcatenation() throws -> TemplateExpression {
        var left = try parseProduct()
        while peekSymbol("~") {
            let line = currentLine
            index += 1
            left = .binary(.concatenate, left, try parseProduct(), line: line)
        }
        return left
    }

    private mutating func parseProduct() throws -> TemplateExpression {
        var left = try parseUnary()
        while case .symbol(let s)? = current?.kind, ["*", "//", "%"].contains(s) {
            let line = currentLine
            index += 1
            left = .binary(BinaryOperator(rawValue: s)!, left, try parseUnary(), line: line)
        }
        if case .symbol(let s)? = current?.kind, s == "/" || s == "**" {
            throw ChatTemplateError.syntax("the operator '\(s)' is not supported (it gives floats or powers)", line: currentLine)
        }
        return left
    }

    private mutating func parseUnary(withFilters: Bool = true) throws -> TemplateExpression {
        var value: TemplateExpression
        if peekSymbol("-") {
            let line = currentLine
            index += 1
            value = .negate(try parseUnary(withFilters: false), line: line)
        } else if skip(symbol: "+") {
            value = try parseUnary(withFilters: false)
        } else {
            value = try parsePrimary()
        }
        value = try parsePostfix(value)
        return withFilters ? try parseFilters(value) : value
    }

    // MARK: - Primaries and suffixes

    private mutating func parsePrimary() throws -> TemplateExpression {
        guard let token = current else { throw ChatTemplateError.syntax("an expression is missing", line: currentLine) }
        index += 1
        switch token.kind {
        case .name("true"), .name("True"): return .literal(.bool(true))
        case .name("false"), .name("False"): return .literal(.bool(false))
        case .name("none"), .name("None"): return .literal(.none)
        case .name(let name): return .variable(name, line: token.line)
        case .integer(let n): return .literal(.int(n))
        case .string(var text):
            // Adjacent literals are one string, as in Python.
            while case .string(let more)? = current?.kind {
                text += more
                index += 1
            }
            return .literal(.string(text))
        case .symbol("("):
            let inner = try parseExpression()
            if peekSymbol(",") { throw ChatTemplateError.syntax("tuples are not supported", line: token.line) }
            try expect(symbol: ")")
            return inner
        case .symbol("["):
            var items: [TemplateExpression] = []
            while !skip(symbol: "]") {
                if !items.isEmpty { try expect(symbol: ",") }
                if skip(symbol: "]") { break }  // a trailing comma
                items.append(try parseExpression())
            }
            return .list(items)
        case .symbol("{"):
            throw ChatTemplateError.syntax("dict literals are not supported", line: token.line)
        default:
            throw ChatTemplateError.syntax("unexpected '\(token.text)'", line: token.line)
        }
    }

    private mutating func parsePostfix(_ start: TemplateExpression) throws -> TemplateExpression {
        var value = start
        while let token = current {
            if token.kind == .symbol(".") {
                index += 1
                switch current?.kind {
                case .name(let name)?:
                    index += 1
                    if peekSymbol("(") {
                        throw ChatTemplateError.syntax("method calls ('.\(name)(...)') are not supported", line: token.line)
                    }
                    value = .attribute(value, name, line: token.line)
                case .integer(let n)?:
                    index += 1
                    value = .item(value, .literal(.int(n)), line: token.line)
                default:
                    throw ChatTemplateError.syntax("expected an attribute name after '.'", line: token.line)
                }
            } else if token.kind == .symbol("[") {
                index += 1
                let start = peekSymbol(":") ? nil : try parseExpression()
                if skip(symbol: ":") {
                    let stop = peekSymbol("]") || peekSymbol(":") ? nil : try parseExpression()
                    if peekSymbol(":") { throw ChatTemplateError.syntax("slice steps ('[a:b:c]') are not supported", line: token.line) }
                    value = .slice(value, start: start, stop: stop, line: token.line)
                } else {
                    value = .item(value, start!, line: token.line)
                }
                try expect(symbol: "]")
            } else if token.kind == .symbol("(") {
                value = try parseCall(value, line: token.line)
            } else {
                return value
            }
        }
        return value
    }

    /// `raise_exception(message)`, the one function transformers gives templates.
    private mutating func parseCall(_ callee: TemplateExpression, line: Int) throws -> TemplateExpression {
        guard case .variable("raise_exception", _) = callee else {
            throw ChatTemplateError.syntax("function calls are not supported (only raise_exception(message))", line: line)
        }
        index += 1
        let message = try parseExpression()
        try expect(symbol: ")")
        return .raise(message)
    }

    private mutating func parseFilters(_ start: TemplateExpression) throws -> TemplateExpression {
        var value = start
        while true {
            if skip(symbol: "|") {
                let name = try expectName(purpose: "a filter name")
                guard let filter = TemplateFilter(rawValue: name == "count" ? "length" : name) else {
                    throw ChatTemplateError.syntax("unsupported filter '\(name)'", line: currentLine)
                }
                if skip(symbol: "(") {
                    guard skip(symbol: ")") else {
                        throw ChatTemplateError.syntax("the filter '\(name)' takes no arguments here", line: currentLine)
                    }
                }
                value = .filter(value, filter)
            } else if skip(keyword: "is") {
                let negated = skip(keyword: "not")
                let name = try expectName(purpose: "a test name")
                guard let test = TemplateTest(rawValue: name) else {
                    throw ChatTemplateError.syntax("unsupported test 'is \(name)'", line: currentLine)
                }
                // As jinja2: a name (but else/or/and), literal or bracket right after the test is its argument.
                if let next = current, Self.startsTestArgument(next.kind) {
                    let what = next.kind == .name("is") ? "chained tests ('is a is b')" : "test arguments ('is \(name) \(next.text)')"
                    throw ChatTemplateError.syntax("\(what) are not supported", line: next.line)
                }
                value = .test(value, test, negated: negated)
            } else {
                return value
            }
        }
    }

    private static func startsTestArgument(_ kind: TemplateToken.Kind) -> Bool {
        switch kind {
        case .name(let word): return !["else", "or", "and"].contains(word)
        case .string, .integer: return true
        case .symbol(let s): return s == "(" || s == "[" || s == "{"
        }
    }

    // MARK: - Token helpers

    private var current: TemplateToken? { index < tokens.count ? tokens[index] : nil }
    private var currentLine: Int { current?.line ?? line }

    func peekKeyword(_ word: String) -> Bool { current?.kind == .name(word) }
    func peekSymbol(_ symbol: String) -> Bool { current?.kind == .symbol(symbol) }

    mutating func skip(keyword: String) -> Bool {
        guard peekKeyword(keyword) else { return false }
        index += 1
        return true
    }

    mutating func skip(symbol: String) -> Bool {
        guard peekSymbol(symbol) else { return false }
        index += 1
        return true
    }

    mutating func expect(keyword: String) throws {
        guard skip(keyword: keyword) else {
            throw ChatTemplateError.syntax("expected '\(keyword)', found '\(current?.text ?? "the end of the tag")'", line: currentLine)
        }
    }

    mutating func expect(symbol: String) throws {
        guard skip(symbol: symbol) else {
            throw ChatTemplateError.syntax("expected '\(symbol)', found '\(current?.text ?? "the end of the tag")'", line: currentLine)
        }
    }

    mutating func expectName(purpose: String) throws -> String {
        guard case .name(let name)? = current?.kind else {
            throw ChatTemplateError.syntax("expected \(purpose), found '\(current?.text ?? "the end of the tag")'", line: currentLine)
        }
        index += 1
        return name
    }

    /// Every token of the tag was used.
    func expectEnd(of tag: String) throws {
        if let token = current {
            throw ChatTemplateError.syntax("unexpected '\(token.text)' in \(tag)", line: token.line)
        }
    }
}
