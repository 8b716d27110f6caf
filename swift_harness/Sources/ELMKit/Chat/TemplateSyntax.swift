/// A chat template, parsed: what `TemplateRenderer` walks.
indirect enum TemplateNode: Sendable {
    case text(String)
    /// `{{ expression }}`
    case output(TemplateExpression)
    /// `{% for variable in iterable %} body {% else %} otherwise {% endfor %}`
    case forLoop(variable: String, iterable: TemplateExpression, body: [TemplateNode], otherwise: [TemplateNode])
    /// `{% if %}` and its `elif`s: the first branch whose condition holds, else `otherwise`.
    case conditional(branches: [(condition: TemplateExpression, body: [TemplateNode])], otherwise: [TemplateNode])
    /// `{% set name = value %}`
    case assignment(name: String, value: TemplateExpression)
}

/// An expression inside `{{ }}` or a tag. `line` is where it starts, for runtime errors.
indirect enum TemplateExpression: Sendable {
    case literal(TemplateValue)
    case list([TemplateExpression])
    case variable(String, line: Int)
    /// `object.name`: jinja2 tries the attribute, then the item.
    case attribute(TemplateExpression, String, line: Int)
    /// `object[key]`
    case item(TemplateExpression, TemplateExpression, line: Int)
    /// `object[start:stop]` (no step)
    case slice(TemplateExpression, start: TemplateExpression?, stop: TemplateExpression?, line: Int)
    case not(TemplateExpression)
    case negate(TemplateExpression, line: Int)
    case binary(BinaryOperator, TemplateExpression, TemplateExpression, line: Int)
    /// Python's chained comparison: `a < b < c` is `a < b and b < c`.
    case comparison(TemplateExpression, [(ComparisonOperator, TemplateExpression)], line: Int)
    case and(TemplateExpression, TemplateExpression)
    case or(TemplateExpression, TemplateExpression)
    /// `value if condition else otherwise` (no else: undefined).
    case conditional(value: TemplateExpression, condition: TemplateExpression, otherwise: TemplateExpression?)
    case filter(TemplateExpression, TemplateFilter)
    /// `value is [not] test`
    case test(TemplateExpression, TemplateTest, negated: Bool)
    /// `raise_exception(message)`
    case raise(TemplateExpression)
}

enum BinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case concatenate = "~"
    case multiply = "*"
    case floorDivide = "//"
    case modulo = "%"
}

enum ComparisonOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case greater = ">"
    case lessOrEqual = "<="
    case greaterOrEqual = ">="
    case contains = "in"
    case notContains = "not in"
}

enum TemplateFilter: String, Sendable, CaseIterable {
    case trim, length, upper, lower
}

enum TemplateTest: String, Sendable, CaseIterable {
    case defined, undefined, none, string, number
}
