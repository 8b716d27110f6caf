/// A parsed JSON document.
///
/// Objects keep their keys in file order and strings keep their exact Unicode scalars. We do not
/// decode into `[String: ...]` because Swift compares strings by canonical equivalence: "é" and
/// "e\u{301}" would collide as dictionary keys and silently merge two vocabulary entries.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// "a string", "an object", ... for error messages.
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value as an exact integer (JSON has one number type; ids and sizes must be whole).
    var intValue: Int? {
        guard case .number(let d) = self, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The value for `key` (the last one when a key repeats), compared by exact scalars.
    subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) })?.value
    }
}
