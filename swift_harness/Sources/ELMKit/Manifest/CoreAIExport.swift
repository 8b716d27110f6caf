/// export.json's `coreai` section: the model as Core AI `.aimodel` folder(s). Its chunks follow the
/// same schema and driving rules as the Core ML ones in the top-level `chunks`.
public struct CoreAIExport: Sendable, Equatable {
    /// The one .aimodel of an unsplit export; nil when the model is split over several.
    public let package: String?
    /// The .aimodel folders in calling order, each with its own prefill/decode functions and state.
    public let chunks: [ChunkSpec]
    public let packageBytes: Int?
    /// The OS the packages were made for, e.g. "iOS27".
    public let deploymentTarget: String?

    public init(package: String?, chunks: [ChunkSpec], packageBytes: Int? = nil, deploymentTarget: String? = nil) {
        self.package = package
        self.chunks = chunks
        self.packageBytes = packageBytes
        self.deploymentTarget = deploymentTarget
    }
}

extension ExportManifest {
    /// export.json's `formats`; a manifest without it was written before Core AI and holds Core ML.
    static func formats(_ fields: JSONFields, source: String) throws -> [ExportFormat] {
        guard fields.optional("formats") != nil else { return [.coreML] }
        var formats: [ExportFormat] = []
        for (i, value) in try fields.array("formats").enumerated() {
            guard let name = value.stringValue else {
                throw JSONFieldError.wrongType("formats[\(i)]", expected: "a string", found: value)
            }
            guard let format = ExportFormat(rawValue: name) else {
                let known = ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")
                throw ManifestError(source: source, reason: "formats[\(i)] is '\(name)', which this ELMKit does not know (it reads \(known)); update ELMKit")
            }
            if !formats.contains(format) { formats.append(format) }
        }
        guard !formats.isEmpty else {
            throw ManifestError(source: source, reason: "formats is empty, so the folder holds no model; export the model again")
        }
        return formats
    }

    /// The `coreai` section, which must be there exactly when `formats` lists "coreai".
    static func coreAIExport(_ fields: JSONFields, holdsCoreAI: Bool, source: String) throws -> CoreAIExport? {
        let section = try fields.optionalObject("coreai")
        guard holdsCoreAI else {
            guard section == nil else {
                throw ManifestError(source: source, reason: "there is a 'coreai' section but formats does not list 'coreai'; export the model again")
            }
            return nil
        }
        guard let section else {
            throw ManifestError(source: source, reason: "formats lists 'coreai' but the 'coreai' section with its chunks is missing or null; export the model again with the current elm-export")
        }
        let chunks = try section.objects("chunks").map(chunk)
        let package = try section.optionalString("package")
        // One chunk: `package` names the same .aimodel (as the top level does for Core ML).
        if chunks.count == 1, let package, package != chunks[0].package {
            throw ManifestError(source: source, reason: "coreai.package '\(package)' and coreai.chunks[0].package '\(chunks[0].package)' differ; export the model again")
        }
        return CoreAIExport(package: package, chunks: chunks, packageBytes: try section.optionalInt("package_bytes"),
                            deploymentTarget: try section.optionalString("deployment_target"))
    }
}
