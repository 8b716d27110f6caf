/// The graph an export was built as (elm-export `--target`): what the caller passes each call.
public enum GraphTarget: String, Sendable, CaseIterable {
    /// Token ids in, logits out of prefill and decode (exports from before `--target` are gpu).
    case gpu
    /// The Neural Engine graph: `embed_prefill` / `embed_decode` look the ids up (first chunk
    /// only), every body function takes hidden_in, position, rotary and mask (computed by the
    /// caller, `NeuralEngineInputs`), and only decode gives logits.
    case ane
}

/// export.json's `graph` section: how to call the functions. Absent in exports from before
/// `--target`, which are gpu.
public struct GraphContract: Sendable, Equatable {
    public static let gpu = GraphContract(target: .gpu, functions: ModelFunction.required.map(\.rawValue),
                                          prefillLogits: true, maskValue: Double(NeuralEngineInputs.defaultMaskValue))

    public let target: GraphTarget
    /// The functions every package (ane: the first) holds, e.g. embed_prefill, embed_decode, prefill, decode.
    public let functions: [String]
    /// Whether prefill gives logits (gpu); ane's does not: the prompt's last token is decoded for them.
    public let prefillLogits: Bool
    /// The mask's value at hidden key slots (ane).
    public let maskValue: Double
    /// Tokens per verify call (`graph.verify_length`), nil when not given.
    public let verifyLength: Int?

    public init(target: GraphTarget, functions: [String], prefillLogits: Bool, maskValue: Double, verifyLength: Int? = nil) {
        self.target = target
        self.functions = functions
        self.prefillLogits = prefillLogits
        self.maskValue = maskValue
        self.verifyLength = verifyLength
    }

    /// True when the graph lists a verify function.
    public var listsVerify: Bool { functions.contains(ModelFunction.verify.rawValue) }
}

extension ExportManifest {
    /// The `graph` section (gpu when absent or null). `norms` and the descriptions are not read.
    static func graphContract(_ fields: JSONFields, source: String) throws -> GraphContract {
        guard let section = try fields.optionalObject("graph") else { return .gpu }
        let name = try section.optionalString("target") ?? GraphTarget.gpu.rawValue
        guard let target = GraphTarget(rawValue: name) else {
            let known = GraphTarget.allCases.map(\.rawValue).joined(separator: ", ")
            throw ManifestError(source: source, reason: "graph.target is '\(name)', which this ELMKit does not know (it runs \(known)); update ELMKit")
        }
        let functions: [String]
        if section.optional("functions") != nil {
            functions = try section.array("functions").enumerated().map { i, v in
                guard let s = v.stringValue else { throw JSONFieldError.wrongType("graph.functions[\(i)]", expected: "a string", found: v) }
                return s
            }
        } else {
            functions = target == .ane ? [ChunkSpec.embedPrefill, ChunkSpec.embedDecode] + GraphContract.gpu.functions : GraphContract.gpu.functions
        }
        return GraphContract(target: target, functions: functions,
                             prefillLogits: try section.bool("prefill_logits", default: target == .gpu),
                             maskValue: try section.optionalDouble("mask_value") ?? Double(NeuralEngineInputs.defaultMaskValue),
                             verifyLength: try section.optionalInt("verify_length"))
    }
}
