/// What is wrong with one field of a JSON document, named by its full path ("functions.prefill.inputs[0]").
struct JSONFieldError: Error, CustomStringConvertible {
    let path: String
    let problem: String

    var description: String { "field '\(path)' \(problem)" }

    static func missing(_ path: String) -> JSONFieldError { JSONFieldError(path: path, problem: "is missing") }

    static func wrongType(_ path: String, expected: String, found: JSONValue) -> JSONFieldError {
        JSONFieldError(path: path, problem: "should be \(expected) but is \(found.kindDescription)")
    }
}

/// Typed reading of one JSON object, so loaders say which field is missing or malformed.
struct JSONFields {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, path: String = "") throws {
        guard case .object = value else {
            throw JSONFieldError.wrongType(path.isEmpty ? "(top level)" : path, expected: "an object", found: value)
        }
        self.value = value
        self.path = path
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The raw value, or nil when the key is absent or null.
    func optional(_ key: String) -> JSONValue? {
        guard let v = value[key], !v.isNull else { return nil }
        return v
    }

    func required(_ key: String) throws -> JSONValue {
        guard let v = optional(key) else { throw JSONFieldError.missing(fieldPath(key)) }
        return v
    }

    func string(_ key: String) throws -> String {
        let v = try required(key)
        guard let s = v.stringValue else { throw JSONFieldError.wrongType(fieldPath(key), expected: "a string", found: v) }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        guard optional(key) != nil else { return nil }
        return try string(key)
    }

    func int(_ key: String) throws -> Int {
        let v = try required(key)
        guard let i = v.intValue else { throw JSONFieldError.wrongType(fieldPath(key), expected: "an integer", found: v) }
        return i
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard optional(key) != nil else { return nil }
        return try int(key)
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let v = optional(key) else { return nil }
        guard case .number(let d) = v else { throw JSONFieldError.wrongType(fieldPath(key), expected: "a number", found: v) }
        return d
    }

    func double(_ key: String) throws -> Double {
        _ = try required(key)
        return try optionalDouble(key)!
    }

    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let v = optional(key) else { return defaultValue }
        guard case .bool(let b) = v else { throw JSONFieldError.wrongType(fieldPath(key), expected: "true or false", found: v) }
        return b
    }

    func object(_ key: String) throws -> JSONFields {
        try JSONFields(try required(key), path: fieldPath(key))
    }

    func optionalObject(_ key: String) throws -> JSONFields? {
        guard let v = optional(key) else { return nil }
        return try JSONFields(v, path: fieldPath(key))
    }

    func array(_ key: String) throws -> [JSONValue] {
        let v = try required(key)
        guard case .array(let items) = v else { throw JSONFieldError.wrongType(fieldPath(key), expected: "an array", found: v) }
        return items
    }

    /// Each element of an array of objects, with "key[i]" paths.
    func objects(_ key: String) throws -> [JSONFields] {
        try array(key).enumerated().map { try JSONFields($0.element, path: "\(fieldPath(key))[\($0.offset)]") }
    }

    func ints(_ key: String) throws -> [Int] {
        try array(key).enumerated().map { i, v in
            guard let n = v.intValue else {
                throw JSONFieldError.wrongType("\(fieldPath(key))[\(i)]", expected: "an integer", found: v)
            }
            return n
        }
    }

    func strings(_ key: String) throws -> [String] {
        try array(key).enumerated().map { i, v in
            guard let s = v.stringValue else {
                throw JSONFieldError.wrongType("\(fieldPath(key))[\(i)]", expected: "a string", found: v)
            }
            return s
        }
    }

    /// The key/value pairs in file order (for maps such as a vocabulary).
    var pairs: [(key: String, value: JSONValue)] {
        if case .object(let p) = value { return p }
        return []
    }
}
