/// The functions one package runs, each loaded once under the name `FunctionNames` gives it: the
/// body functions the package has (prefill, decode, verify) and, in an ane export's first
/// package, their embed functions. `CoreMLChunk` and `CoreAIChunk` both load through it, so the
/// choice of adapter reaches every chunk of either format the same way (and is tested on Linux).
public struct ChunkFunctions<Loaded> {
    public let package: String
    public let names: FunctionNames
    private let bodies: [ModelFunction: Loaded]
    private let embeds: [ModelFunction: Loaded]

    /// Loads each function of `spec` by calling `load` with the name it runs under.
    ///
    /// With an adapter, a name that export.json does not list for the package is a `ManifestError`
    /// before `load` is called: Core ML would only say that loading failed.
    public init(spec: ChunkSpec, names: FunctionNames, load: (_ calledName: String) throws -> Loaded) throws {
        func loaded(_ name: String) throws -> Loaded {
            if names.adapter != nil, let listed = spec.listedFunctions, !listed.contains(name) {
                throw ManifestError(source: spec.package, reason: "export.json lists no '\(name)' function for this package (\(names)); export the model again with the adapter")
            }
            return try load(name)
        }
        var bodies: [ModelFunction: Loaded] = [:]
        var embeds: [ModelFunction: Loaded] = [:]
        for function in ModelFunction.allCases where spec.function(function) != nil {
            bodies[function] = try loaded(names.name(of: function))
            if spec.embed(function) != nil { embeds[function] = try loaded(names.embedName(of: function)) }
        }
        package = spec.package
        self.names = names
        self.bodies = bodies
        self.embeds = embeds
    }

    /// The loaded body function for `function`.
    public func body(_ function: ModelFunction) throws -> Loaded {
        guard let body = bodies[function] else { throw missing(names.name(of: function)) }
        return body
    }

    /// The loaded embed function (ane, first package) for `function`.
    public func embed(_ function: ModelFunction) throws -> Loaded {
        guard let embed = embeds[function] else { throw missing(names.embedName(of: function)) }
        return embed
    }

    private func missing(_ name: String) -> GenerationError {
        .modelOutput("\(package) has no '\(name)' function in export.json; export the model again")
    }
}
