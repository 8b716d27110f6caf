// Stand-in for Apple's Core AI framework (iOS 27 / macOS 27), so that ELMKit's Core AI code is
// type-checked on platforms without it (Linux CI). ELMKit imports this module only where
// `canImport(CoreAI)` is false and Core ML is missing too (see Package.swift); elsewhere the file
// compiles to nothing.
//
// Rules for this file, as for CoreMLStandIn:
// - Declare only what the package calls, exactly as Apple's SDK does: the same names, argument
//   labels, `throws` / `async`, `consuming` / `inout`, optionality and generic signatures. Each
//   declaration names the symbol it mirrors (developer.apple.com/documentation/coreai/...); the
//   calls follow how Apple's own Swift package (github.com/apple/coreai-models, swift/Sources)
//   uses them.
// - Nothing here works: a throwing member throws `CoreAIUnavailableError`, anything else stops
//   with fatalError. Nothing reaches these at run time: elm-run and the chat app pick Core AI only
//   where `CoreAIRuntime.isAvailable` is true, which it never is with the stand-in.
// - Stricter where unsure: `NDArray` is not declared Sendable and `MutableViews` is ~Copyable, so
//   code that compiles here also compiles against Apple's declarations.
// - Not mirrored: Apple's views (`NDArray.View`, `MutableView`, `InferenceFunction.MutableViews`)
//   carry lifetime dependencies (~Escapable) that need an experimental compiler feature to
//   declare. ELMKit uses each view only inside the expression or closure that makes it, as
//   apple/coreai-models does; Xcode checks the lifetimes.
// - Availability is copied from Apple's documentation; on Linux it is inert.
#if !canImport(CoreAI)
import Foundation

/// What every throwing member of the stand-in throws.
public struct CoreAIUnavailableError: Error, CustomStringConvertible {
    public let symbol: String
    public init(_ symbol: String) { self.symbol = symbol }
    public var description: String { "Core AI is not available on this platform (\(symbol))" }
}

@inline(never)
func unavailable(_ symbol: String) -> Never {
    fatalError("Core AI is not available on this platform (\(symbol))")
}

// MARK: - Specialization (documentation/coreai/specializationoptions, .../computeunitkind)

/// `enum ComputeUnitKind` — documentation/coreai/computeunitkind. Only the cases ELMKit names.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public enum ComputeUnitKind: Hashable, Sendable {
    /// `case cpu` — documentation/coreai/computeunitkind/cpu
    case cpu
    /// `case gpu` — documentation/coreai/computeunitkind/gpu
    case gpu
    /// `case neuralEngine` — documentation/coreai/computeunitkind/neuralengine
    case neuralEngine
}

/// `struct SpecializationOptions` (Sendable: Apple declares `static let` presets of it) —
/// documentation/coreai/specializationoptions: how
/// `AIModel(contentsOf:options:)` specializes a model for this device.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct SpecializationOptions: Sendable {
    /// Not Apple's: the stand-in needs an initializer for its presets.
    init(standIn: Void) {}

    /// `static let default: SpecializationOptions` (all compute units) —
    /// documentation/coreai/specializationoptions/default
    public static let `default` = SpecializationOptions(standIn: ())

    /// `static let cpuOnly: SpecializationOptions` — documentation/coreai/specializationoptions/cpuonly
    public static let cpuOnly = SpecializationOptions(standIn: ())

    /// `init(preferredComputeUnitKind: ComputeUnitKind)` —
    /// documentation/coreai/specializationoptions/init(preferredcomputeunitkind:)
    public init(preferredComputeUnitKind: ComputeUnitKind) {
        unavailable("SpecializationOptions.init(preferredComputeUnitKind:)")
    }
}

// MARK: - AIModel (documentation/coreai/aimodel)

/// `struct AIModel` — documentation/coreai/aimodel: a specialized `.aimodel` / `.aimodelc`.
/// Sendable: apple/coreai-models keeps one in a Sendable struct (`PreparedModel`).
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct AIModel: Sendable {
    /// `init(contentsOf modelURL: URL, options: SpecializationOptions = .default) async throws` —
    /// documentation/coreai/aimodel/init(contentsof:options:)
    public init(contentsOf modelURL: URL, options: SpecializationOptions = .default) async throws {
        throw CoreAIUnavailableError("AIModel.init(contentsOf:options:)")
    }

    /// `var functionNames: [String] { get }` — documentation/coreai/aimodel/functionnames
    public var functionNames: [String] { unavailable("AIModel.functionNames") }

    /// `func loadFunction(named functionName: String) throws -> InferenceFunction?` —
    /// documentation/coreai/aimodel/loadfunction(named:)
    public func loadFunction(named functionName: String) throws -> InferenceFunction? {
        throw CoreAIUnavailableError("AIModel.loadFunction(named:)")
    }
}

// MARK: - InferenceFunction (documentation/coreai/inferencefunction)

/// `struct InferenceFunction` (Sendable) — documentation/coreai/inferencefunction.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct InferenceFunction: Sendable {
    /// `let descriptor: InferenceFunctionDescriptor` — documentation/coreai/inferencefunction/descriptor
    public var descriptor: InferenceFunctionDescriptor { unavailable("InferenceFunction.descriptor") }

    /// `func run(inputs: [String : NDArray], states: consuming InferenceFunction.MutableViews = MutableViews(), outputViews: consuming InferenceFunction.MutableViews = MutableViews()) async throws -> InferenceFunction.Outputs`
    /// — documentation/coreai/inferencefunction/run(inputs:states:outputviews:)-mqfb
    public func run(inputs: [String: NDArray], states: consuming MutableViews = MutableViews(),
                    outputViews: consuming MutableViews = MutableViews()) async throws -> Outputs {
        throw CoreAIUnavailableError("InferenceFunction.run(inputs:states:outputViews:)")
    }

    /// `struct MutableViews` — documentation/coreai/inferencefunction/mutableviews: the states and
    /// output buffers a run updates in place.
    public struct MutableViews: ~Copyable {
        /// `init()` — documentation/coreai/inferencefunction/mutableviews/init()
        public init() {}

        /// `mutating func insert(_ value: inout some InferenceValue.MutableViewRepresentable & ~Copyable, for name: String)`
        /// — documentation/coreai/inferencefunction/mutableviews/insert(_:for:)-1b2yx
        public mutating func insert(_ value: inout some InferenceValue.MutableViewRepresentable & ~Copyable, for name: String) {
            unavailable("InferenceFunction.MutableViews.insert(_:for:)")
        }
    }

    /// `struct Outputs` — documentation/coreai/inferencefunction/outputs (ELMKit passes output
    /// views instead of reading it).
    public struct Outputs {
        init(standIn: Void) {}
    }
}

/// `struct InferenceFunctionDescriptor` — documentation/coreai/inferencefunctiondescriptor.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct InferenceFunctionDescriptor {
    /// `var stateNames: [String] { get }` — documentation/coreai/inferencefunctiondescriptor/statenames
    public var stateNames: [String] { unavailable("InferenceFunctionDescriptor.stateNames") }

    /// `func stateDescriptor(of stateName: String) -> InferenceValue.Descriptor?` —
    /// documentation/coreai/inferencefunctiondescriptor/statedescriptor(of:)
    public func stateDescriptor(of stateName: String) -> InferenceValue.Descriptor? {
        unavailable("InferenceFunctionDescriptor.stateDescriptor(of:)")
    }
}

// MARK: - Values (documentation/coreai/inferencevalue)

/// `struct InferenceValue` — documentation/coreai/inferencevalue.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct InferenceValue {
    /// `enum Descriptor` (Sendable) — documentation/coreai/inferencevalue/descriptor
    public enum Descriptor: Sendable {
        /// `case image(ImageDescriptor)` — documentation/coreai/inferencevalue/descriptor/image(_:)
        case image(ImageDescriptor)
        /// `case ndArray(NDArrayDescriptor)` — documentation/coreai/inferencevalue/descriptor/ndarray(_:)
        case ndArray(NDArrayDescriptor)
    }

    /// `protocol MutableViewRepresentable : ~Copyable` (NDArray conforms) —
    /// documentation/coreai/inferencevalue/mutableviewrepresentable. Its `mutableView()`
    /// requirement is left out: ELMKit never calls it.
    public protocol MutableViewRepresentable: ~Copyable {}
}

/// `struct ImageDescriptor` — documentation/coreai/imagedescriptor (only named by `Descriptor`).
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct ImageDescriptor: Sendable {
    init(standIn: Void) {}
}

/// `struct NDArrayDescriptor` — documentation/coreai/ndarraydescriptor: shape and element type of
/// an array a function takes, gives or keeps as state.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct NDArrayDescriptor: Sendable {
    /// `var shape: [Int]` — documentation/coreai/ndarraydescriptor/shape
    public var shape: [Int] { unavailable("NDArrayDescriptor.shape") }

    /// `var scalarType: NDArray.ScalarType` — documentation/coreai/ndarraydescriptor/scalartype
    public var scalarType: NDArray.ScalarType { unavailable("NDArrayDescriptor.scalarType") }

    /// `var minimumByteCount: Int` (bytes an array of this layout occupies, padding included) —
    /// documentation/coreai/ndarraydescriptor/minimumbytecount
    public var minimumByteCount: Int { unavailable("NDArrayDescriptor.minimumByteCount") }
}

// MARK: - NDArray (documentation/coreai/ndarray)

/// `struct NDArray` — documentation/coreai/ndarray: an array that owns its storage.
@available(macOS 27.0, iOS 27.0, macCatalyst 27.0, tvOS 27.0, watchOS 27.0, visionOS 27.0, *)
public struct NDArray: InferenceValue.MutableViewRepresentable {
    /// `init(shape: [Int], scalarType: NDArray.ScalarType)` (contiguous, row-major) —
    /// documentation/coreai/ndarray/init(shape:scalartype:)
    public init(shape: [Int], scalarType: ScalarType) {
        unavailable("NDArray.init(shape:scalarType:)")
    }

    /// `init(descriptor: consuming NDArrayDescriptor)` (the shape and preferred strides of the
    /// descriptor; may not be contiguous) — documentation/coreai/ndarray/init(descriptor:)
    public init(descriptor: consuming NDArrayDescriptor) {
        unavailable("NDArray.init(descriptor:)")
    }

    /// `var shape: [Int] { get }` — documentation/coreai/ndarray/shape
    public var shape: [Int] { unavailable("NDArray.shape") }

    /// `var scalarType: NDArray.ScalarType { get }` — documentation/coreai/ndarray/scalartype-swift.property
    public var scalarType: ScalarType { unavailable("NDArray.scalarType") }

    /// `func view<T>(as type: T.Type = T.self) -> NDArray.View<T> where T : BitwiseCopyable` —
    /// documentation/coreai/ndarray/view(as:)
    public func view<T: BitwiseCopyable>(as type: T.Type = T.self) -> View<T> {
        unavailable("NDArray.view(as:)")
    }

    /// `mutating func mutableView<T>(as type: T.Type = T.self) -> NDArray.MutableView<T> where T : BitwiseCopyable`
    /// — documentation/coreai/ndarray/mutableview(as:)
    public mutating func mutableView<T: BitwiseCopyable>(as type: T.Type = T.self) -> MutableView<T> {
        unavailable("NDArray.mutableView(as:)")
    }

    /// `enum ScalarType` — documentation/coreai/ndarray/scalartype-swift.enum. Only the cases ELMKit names.
    public enum ScalarType: Hashable, Sendable {
        case float16
        case float32
        case int32
    }

    /// `struct View<Element> where Element : BitwiseCopyable` — documentation/coreai/ndarray/view
    public struct View<Element: BitwiseCopyable> {
        init(standIn: Void) {}

        /// `func withUnsafePointer<R, E>(_ body: (UnsafePointer<Element>, Span<Int>, Span<Int>) throws(E) -> R) throws(E) -> R where E : Error`
        /// (pointer to the first element, shape, strides in elements) —
        /// documentation/coreai/ndarray/view/withunsafepointer(_:)
        public func withUnsafePointer<R, E: Error>(
            _ body: (UnsafePointer<Element>, Span<Int>, Span<Int>) throws(E) -> R
        ) throws(E) -> R {
            unavailable("NDArray.View.withUnsafePointer(_:)")
        }
    }

    /// `struct MutableView<Element> where Element : BitwiseCopyable` — documentation/coreai/ndarray/mutableview
    public struct MutableView<Element: BitwiseCopyable> {
        init(standIn: Void) {}

        /// `func withUnsafeMutablePointer<R, E>(_ body: (UnsafeMutablePointer<Element>, Span<Int>, Span<Int>) throws(E) -> R) throws(E) -> R where E : Error`
        /// — documentation/coreai/ndarray/mutableview/withunsafemutablepointer(_:) (called on a
        /// `let` view in apple/coreai-models, so not mutating)
        public func withUnsafeMutablePointer<R, E: Error>(
            _ body: (UnsafeMutablePointer<Element>, Span<Int>, Span<Int>) throws(E) -> R
        ) throws(E) -> R {
            unavailable("NDArray.MutableView.withUnsafeMutablePointer(_:)")
        }
    }
}
#endif
