/// A value inside a chat template, with Python's semantics (what jinja2 computes with). Strings
/// compare by Unicode scalars, as Python's do, not by Swift's canonical equivalence.
indirect enum TemplateValue: Sendable {
    /// jinja2's default Undefined: empty and falsy, an error in arithmetic, ordering and subscripts.
    case undefined(name: String)
    case none
    case bool(Bool)
    case int(Int)
    case string(String)
    case list([TemplateValue])
    /// Keys in insertion order, as a Python dict.
    case dictionary([(key: String, value: TemplateValue)])

    /// Python's truth value.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let n): return n != 0
        case .string(let s): return !s.unicodeScalars.isEmpty
        case .list(let items): return !items.isEmpty
        case .dictionary(let pairs): return !pairs.isEmpty
        }
    }

    /// bool and int are both numbers in Python (True == 1).
    var number: Int? {
        switch self {
        case .int(let n): return n
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .string: return "str"
        case .list: return "list"
        case .dictionary: return "dict"
        }
    }

    /// `str(value)`: what `{{ value }}` writes. Undefined writes nothing.
    var text: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's `repr`, used inside lists and dicts.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let n): return String(n)
        case .string(let s): return Self.pythonRepr(s)
        case .list(let items): return "[" + items.map(\.repr).joined(separator: ", ") + "]"
        case .dictionary(let pairs):
            return "{" + pairs.map { Self.pythonRepr($0.key) + ": " + $0.value.repr }.joined(separator: ", ") + "}"
        }
    }

    /// Python's `==`.
    func equals(_ other: TemplateValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dictionary(let a), .dictionary(let b)):
            return a.count == b.count && a.allSatisfy { pair in other.item(pair.key).map { $0.equals(pair.value) } ?? false }
        default:
            guard let a = number, let b = other.number else { return false }
            return a == b
        }
    }

    /// The value under `key` of a dictionary, nil when absent (or not a dictionary).
    func item(_ key: String) -> TemplateValue? {
        guard case .dictionary(let pairs) = self else { return nil }
        return pairs.last { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }?.value
    }

    /// Python's repr of a str: single quotes unless the text has one and no double quote.
    private static func pythonRepr(_ s: String) -> String {
        let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView([quote])
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case quote: out.append(contentsOf: ["\\", quote])
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out.append(contentsOf: ("\\x" + hex(scalar.value, digits: 2)).unicodeScalars)
                } else {
                    out.append(scalar)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

/// Python's whitespace (`str.isspace`, the `\s` of `re`): what trim, `-` and lstrip_blocks remove.
enum PythonWhitespace {
    static func contains(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `s.strip()`.
    static func strip(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !contains($0) }),
              let last = scalars.lastIndex(where: { !contains($0) }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
