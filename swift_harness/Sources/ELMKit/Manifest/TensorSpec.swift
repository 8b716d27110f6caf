/// One named input, output or state of the exported model, as export.json describes it.
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let dtype: String

    public init(name: String, shape: [Int], dtype: String) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
    }

    init(_ fields: JSONFields) throws {
        name = try fields.string("name")
        shape = try fields.ints("shape")
        dtype = try fields.string("dtype")
    }
}

/// The inputs and outputs of one function ("prefill" or "decode") of the multifunction package.
public struct FunctionSpec: Sendable, Equatable {
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]

    public init(inputs: [TensorSpec], outputs: [TensorSpec]) {
        self.inputs = inputs
        self.outputs = outputs
    }

    public func input(_ name: String) -> TensorSpec? { inputs.first { $0.name == name } }
    public func output(_ name: String) -> TensorSpec? { outputs.first { $0.name == name } }
}
