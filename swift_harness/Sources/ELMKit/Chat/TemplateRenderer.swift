/// Walks a parsed template and writes its output, with jinja2's scoping: `{% set %}` at the top
/// level lasts to the end, inside a loop only to the end of that iteration; `if` opens no scope.
struct TemplateRenderer {
    /// Innermost last. Frame 0 holds the globals and top-level assignments.
    private var scopes: [[String: TemplateValue]]

    init(globals: [String: TemplateValue]) {
        scopes = [globals]
    }

    mutating func render(_ nodes: [TemplateNode]) throws -> String {
        var out = ""
        try render(nodes, into: &out)
        return out
    }

    private mutating func render(_ nodes: [TemplateNode], into out: inout String) throws {
        for node in nodes {
            switch node {
            case .text(let text):
                out += text
            case .output(let expression):
                out += try evaluate(expression).text
            case .assignment(let name, let value):
                scopes[scopes.count - 1][name] = try evaluate(value)
            case .conditional(let branches, let otherwise):
                var chosen = otherwise
                for branch in branches where try evaluate(branch.condition).isTruthy {
                    chosen = branch.body
                    break
                }
                try render(chosen, into: &out)
            case .forLoop(let variable, let iterable, let body, let otherwise):
                let items = try elements(of: try evaluate(iterable), expression: iterable)
                if items.isEmpty { try render(otherwise, into: &out) }
                for (i, item) in items.enumerated() {
                    scopes.append([variable: item, "loop": Self.loopInfo(i, count: items.count)])
                    defer { scopes.removeLast() }
                    try render(body, into: &out)
                }
            }
        }
    }

    /// jinja2's `loop` variable for iteration `i` of `count`.
    private static func loopInfo(_ i: Int, count: Int) -> TemplateValue {
        .dictionary([
            ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(count - i)), ("revindex0", .int(count - i - 1)),
            ("first", .bool(i == 0)), ("last", .bool(i == count - 1)), ("length", .int(count)),
        ])
    }

    /// What `for` walks: a list's items, a dict's keys, a string's characters; undefined is empty.
    private func elements(of value: TemplateValue, expression: TemplateExpression) throws -> [TemplateValue] {
        switch value {
        case .undefined: return []
        case .list(let items): return items
        case .dictionary(let pairs): return pairs.map { .string($0.key) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw ChatTemplateError.type("'\(value.typeName)' object is not iterable", line: Self.line(of: expression))
        }
    }

    private func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined(name: name)
    }

    // MARK: - Expressions

    private func evaluate(_ expression: TemplateExpression) throws -> TemplateValue {
        switch expression {
        case .literal(let value):
            return value
        case .list(let items):
            return .list(try items.map(evaluate))
        case .variable(let name, _):
            return lookup(name)
        case .attribute(let object, let name, let line):
            return try TemplateOperations.item(try evaluate(object), key: .string(name), line: line)
        case .item(let object, let key, let line):
            return try TemplateOperations.item(try evaluate(object), key: try evaluate(key), line: line)
        case .slice(let object, let start, let stop, let line):
            return try TemplateOperations.slice(try evaluate(object), start: try start.map(evaluate), stop: try stop.map(evaluate), line: line)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .negate(let operand, let line):
            return try TemplateOperations.negate(try evaluate(operand), line: line)
        case .binary(let op, let left, let right, let line):
            return try TemplateOperations.binary(op, try evaluate(left), try evaluate(right), line: line)
        case .comparison(let first, let rest, let line):
            var left = try evaluate(first)
            for (op, operand) in rest {
                let right = try evaluate(operand)
                guard try TemplateOperations.compare(op, left, right, line: line) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? try evaluate(right) : value
        case .or(let left, let right):
            let value = try evaluate(left)
            return value.isTruthy ? value : try evaluate(right)
        case .conditional(let value, let condition, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(value) }
            return try otherwise.map(evaluate) ?? .undefined(name: "the 'else' of a conditional expression")
        case .filter(let operand, let filter):
            return try TemplateOperations.apply(filter, try evaluate(operand), line: Self.line(of: operand))
        case .test(let operand, let test, let negated):
            return .bool(TemplateOperations.passes(test, try evaluate(operand)) != negated)
        case .raise(let message):
            throw ChatTemplateError.raised(try evaluate(message).text)
        }
    }

    /// The line an expression starts on, where it has one (for runtime errors).
    private static func line(of expression: TemplateExpression) -> Int {
        switch expression {
        case .variable(_, let line), .attribute(_, _, let line), .item(_, _, let line), .slice(_, _, _, let line), .negate(_, let line),
             .binary(_, _, _, let line), .comparison(_, _, let line):
            return line
        case .filter(let operand, _), .test(let operand, _, _), .not(let operand):
            return line(of: operand)
        default:
            return 0
        }
    }
}
