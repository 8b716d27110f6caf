/// The operators, filters and tests on template values, as Python and jinja2 define them.
enum TemplateOperations {
    /// `object[key]` and `object.key` (jinja2 falls back from one to the other): a missing key or
    /// index is undefined; subscripting undefined is an error.
    static func item(_ object: TemplateValue, key: TemplateValue, line: Int) throws -> TemplateValue {
        switch (object, key) {
        case (.undefined(let name), _):
            throw ChatTemplateError.undefined(name, line: line)
        case (.dictionary, .string(let k)):
            return object.item(k) ?? .undefined(name: k)
        case (.list(let items), _):
            guard let i = key.number.flatMap({ pythonIndex($0, count: items.count) }) else { return .undefined(name: key.text) }
            return items[i]
        case (.string(let s), _):
            let scalars = Array(s.unicodeScalars)
            guard let i = key.number.flatMap({ pythonIndex($0, count: scalars.count) }) else { return .undefined(name: key.text) }
            return .string(String(scalars[i]))
        default:
            return .undefined(name: key.text)
        }
    }

    /// `object[start:stop]` of a list or string, with Python's clamping and negative bounds.
    static func slice(_ object: TemplateValue, start: TemplateValue?, stop: TemplateValue?, line: Int) throws -> TemplateValue {
        func bound(_ value: TemplateValue?, count: Int, default fallback: Int) throws -> Int {
            guard let value, !value.equals(.none) else { return fallback }
            guard let n = value.number else { throw ChatTemplateError.type("slice indices must be integers or None", line: line) }
            return min(max(n < 0 ? n + count : n, 0), count)
        }
        switch object {
        case .undefined(let name):
            throw ChatTemplateError.undefined(name, line: line)
        case .list(let items):
            let from = try bound(start, count: items.count, default: 0), to = try bound(stop, count: items.count, default: items.count)
            return .list(from < to ? Array(items[from..<to]) : [])
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            let from = try bound(start, count: scalars.count, default: 0), to = try bound(stop, count: scalars.count, default: scalars.count)
            return .string(from < to ? String(String.UnicodeScalarView(scalars[from..<to])) : "")
        default:
            throw ChatTemplateError.type("'\(object.typeName)' object is not subscriptable", line: line)
        }
    }

    /// A Python index (negative from the end) as an array index, nil when out of range.
    private static func pythonIndex(_ index: Int, count: Int) -> Int? {
        let i = index < 0 ? index + count : index
        return (0..<count).contains(i) ? i : nil
    }

    static func negate(_ value: TemplateValue, line: Int) throws -> TemplateValue {
        if case .undefined(let name) = value { throw ChatTemplateError.undefined(name, line: line) }
        guard let n = value.number else { throw ChatTemplateError.type("bad operand type for unary -: '\(value.typeName)'", line: line) }
        return .int(-n)
    }

    static func binary(_ op: BinaryOperator, _ left: TemplateValue, _ right: TemplateValue, line: Int) throws -> TemplateValue {
        if op == .concatenate { return .string(left.text + right.text) }  // undefined is "" here
        if op == .modulo, case .string = left {
            throw ChatTemplateError.type("string formatting with '%' is not supported", line: line)
        }
        for case .undefined(let name) in [left, right] { throw ChatTemplateError.undefined(name, line: line) }
        switch (op, left, right) {
        case (.add, .string(let a), .string(let b)): return .string(a + b)
        case (.add, .list(let a), .list(let b)): return .list(a + b)
        case (.multiply, .string(let s), _) where right.number != nil: return .string(String(repeating: s, count: max(right.number!, 0)))
        case (.multiply, _, .string(let s)) where left.number != nil: return .string(String(repeating: s, count: max(left.number!, 0)))
        case (.multiply, .list(let items), _) where right.number != nil: return .list(repeated(items, right.number!))
        case (.multiply, _, .list(let items)) where left.number != nil: return .list(repeated(items, left.number!))
        default: break
        }
        guard let a = left.number, let b = right.number else {
            throw ChatTemplateError.type("unsupported operand type(s) for \(op.rawValue): '\(left.typeName)' and '\(right.typeName)'", line: line)
        }
        return .int(try arithmetic(op, a, b, line: line))
    }

    /// Integer arithmetic with Python's floor division and modulo (the sign of the divisor).
    private static func arithmetic(_ op: BinaryOperator, _ a: Int, _ b: Int, line: Int) throws -> Int {
        if op == .floorDivide || op == .modulo {
            guard b != 0 else { throw ChatTemplateError.type("integer division or modulo by zero", line: line) }
            let remainder = a % b
            let floors = remainder != 0 && (remainder < 0) != (b < 0)
            return op == .modulo ? (floors ? remainder + b : remainder) : a / b - (floors ? 1 : 0)
        }
        let (result, overflow): (Int, Bool)
        switch op {
        case .add: (result, overflow) = a.addingReportingOverflow(b)
        case .subtract: (result, overflow) = a.subtractingReportingOverflow(b)
        default: (result, overflow) = a.multipliedReportingOverflow(by: b)
        }
        guard !overflow else { throw ChatTemplateError.type("integer overflow in \(op.rawValue)", line: line) }
        return result
    }

    static func compare(_ op: ComparisonOperator, _ left: TemplateValue, _ right: TemplateValue, line: Int) throws -> Bool {
        switch op {
        case .equal: return left.equals(right)
        case .notEqual: return !left.equals(right)
        case .contains: return try contains(right, left, line: line)
        case .notContains: return try !contains(right, left, line: line)
        case .less, .greater, .lessOrEqual, .greaterOrEqual:
            for case .undefined(let name) in [left, right] { throw ChatTemplateError.undefined(name, line: line) }
            let order = try self.order(left, right, op, line: line)
            switch op {
            case .less: return order < 0
            case .greater: return order > 0
            case .lessOrEqual: return order <= 0
            default: return order >= 0
            }
        }
    }

    /// Python's ordering: -1, 0 or 1. Numbers by value, strings by code point, lists item by item.
    private static func order(_ left: TemplateValue, _ right: TemplateValue, _ op: ComparisonOperator, line: Int) throws -> Int {
        if let a = left.number, let b = right.number { return a < b ? -1 : a == b ? 0 : 1 }
        switch (left, right) {
        case (.string(let a), .string(let b)):
            let x = a.unicodeScalars.map(\.value), y = b.unicodeScalars.map(\.value)
            return x.lexicographicallyPrecedes(y) ? -1 : x == y ? 0 : 1
        case (.list(let a), .list(let b)):
            // The first unequal pair decides; all equal: the shorter list first.
            for (x, y) in zip(a, b) where !x.equals(y) { return try order(x, y, op, line: line) }
            return a.count < b.count ? -1 : a.count == b.count ? 0 : 1
        default:
            throw ChatTemplateError.type("'\(op.rawValue)' not supported between instances of '\(left.typeName)' and '\(right.typeName)'", line: line)
        }
    }

    private static func repeated(_ items: [TemplateValue], _ times: Int) -> [TemplateValue] {
        Array([[TemplateValue]](repeating: items, count: max(times, 0)).joined())
    }

    /// Python's `element in container`.
    private static func contains(_ container: TemplateValue, _ element: TemplateValue, line: Int) throws -> Bool {
        switch container {
        case .undefined: return false  // jinja2's Undefined iterates as empty
        case .list(let items): return items.contains { $0.equals(element) }
        case .dictionary(let pairs):
            guard case .string(let key) = element else { return false }
            return pairs.contains { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }
        case .string(let text):
            guard case .string(let part) = element else {
                throw ChatTemplateError.type("'in <string>' requires string as left operand, not \(element.typeName)", line: line)
            }
            return containsScalars(Array(text.unicodeScalars), Array(part.unicodeScalars))
        default:
            throw ChatTemplateError.type("argument of type '\(container.typeName)' is not iterable", line: line)
        }
    }

    private static func containsScalars(_ text: [Unicode.Scalar], _ part: [Unicode.Scalar]) -> Bool {
        guard !part.isEmpty else { return true }
        guard part.count <= text.count else { return false }
        return (0...(text.count - part.count)).contains { text[$0..<($0 + part.count)].elementsEqual(part) }
    }

    static func apply(_ filter: TemplateFilter, _ value: TemplateValue, line: Int) throws -> TemplateValue {
        switch filter {
        case .trim: return .string(PythonWhitespace.strip(value.text))
        case .upper: return .string(value.text.uppercased())
        case .lower: return .string(value.text.lowercased())
        case .length:
            switch value {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let items): return .int(items.count)
            case .dictionary(let pairs): return .int(pairs.count)
            default: throw ChatTemplateError.type("object of type '\(value.typeName)' has no len()", line: line)
            }
        }
    }

    static func passes(_ test: TemplateTest, _ value: TemplateValue) -> Bool {
        switch (test, value) {
        case (.defined, .undefined): return false
        case (.defined, _): return true
        case (.undefined, .undefined): return true
        case (.undefined, _): return false
        case (.none, .none): return true
        case (.string, .string): return true
        case (.number, .int), (.number, .bool): return true
        default: return false
        }
    }
}
