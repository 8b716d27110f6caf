// Stand-in for Apple's Core ML framework, so that ELMKit's Core ML code is type-checked on
// platforms without it (Linux CI). ELMKit imports this module only where `canImport(CoreML)` is
// false (see Package.swift); on Apple platforms the file compiles to nothing.
//
// Rules for this file:
// - Declare only what the package calls, and declare it exactly as Apple's SDK does: the same
//   names, argument labels, `throws` / `async`, optionality, generic signatures and availability.
//   Each declaration names the symbol it mirrors (developer.apple.com/documentation/coreml/...,
//   and the Objective-C header in CoreML.framework/Headers where there is one).
// - Nothing here works: a throwing member throws `CoreMLUnavailableError`, anything else stops
//   with fatalError. Nothing reaches these at run time: elm-run and the chat app check for Core ML
//   before loading a model.
// - Sendable: Apple's classes are not declared Sendable here. Code that compiles against fewer
//   conformances also compiles against Apple's, so this errs on the strict side.
// - Availability attributes are copied from Apple's documentation; on Linux they are inert (the
//   compiler checks them only when building for an Apple platform), so they document, not enforce.
#if !canImport(CoreML)
import Foundation

/// What every throwing member of the stand-in throws.
public struct CoreMLUnavailableError: Error, CustomStringConvertible {
    public let symbol: String
    public init(_ symbol: String) { self.symbol = symbol }
    public var description: String { "Core ML is not available on this platform (\(symbol))" }
}

@inline(never)
func unavailable(_ symbol: String) -> Never {
    fatalError("Core ML is not available on this platform (\(symbol))")
}

// MARK: - MLComputeUnits (MLModelConfiguration.h)

/// `MLComputeUnits` — NS_ENUM(NSInteger), MLModelConfiguration.h;
/// https://developer.apple.com/documentation/coreml/mlcomputeunits
/// (iOS 12 / macOS 10.14; `cpuAndNeuralEngine` iOS 16 / macOS 13). Raw values as in the header.
@available(macOS 10.14, iOS 12.0, tvOS 12.0, watchOS 5.0, *)
public enum MLComputeUnits: Int, Sendable {
    /// `MLComputeUnitsCPUOnly` — documentation/coreml/mlcomputeunits/cpuonly
    case cpuOnly = 0
    /// `MLComputeUnitsCPUAndGPU` — documentation/coreml/mlcomputeunits/cpuandgpu
    case cpuAndGPU = 1
    /// `MLComputeUnitsAll` — documentation/coreml/mlcomputeunits/all
    case all = 2
    /// `MLComputeUnitsCPUAndNeuralEngine` — documentation/coreml/mlcomputeunits/cpuandneuralengine
    @available(macOS 13.0, iOS 16.0, tvOS 16.0, watchOS 9.0, *)
    case cpuAndNeuralEngine = 3
}

// MARK: - MLModelConfiguration (MLModelConfiguration.h)

/// `class MLModelConfiguration : NSObject` — MLModelConfiguration.h;
/// https://developer.apple.com/documentation/coreml/mlmodelconfiguration (iOS 12 / macOS 10.14).
@available(macOS 10.14, iOS 12.0, tvOS 12.0, watchOS 5.0, *)
open class MLModelConfiguration: NSObject {
    /// `override init()` (NSObject's, inherited).
    public override init() { super.init() }

    /// `var computeUnits: MLComputeUnits { get set }` —
    /// documentation/coreml/mlmodelconfiguration/computeunits
    open var computeUnits: MLComputeUnits {
        get { unavailable("MLModelConfiguration.computeUnits") }
        set { unavailable("MLModelConfiguration.computeUnits") }
    }

    /// `var functionName: String? { get set }` (iOS 18 / macOS 15) —
    /// documentation/coreml/mlmodelconfiguration/functionname
    @available(macOS 15.0, iOS 18.0, tvOS 18.0, watchOS 11.0, visionOS 2.0, *)
    open var functionName: String? {
        get { unavailable("MLModelConfiguration.functionName") }
        set { unavailable("MLModelConfiguration.functionName") }
    }
}

// MARK: - MLMultiArray (MLMultiArray.h, Swift overlay)

/// `MLMultiArrayDataType` — NS_ENUM(NSInteger), MLMultiArray.h;
/// https://developer.apple.com/documentation/coreml/mlmultiarraydatatype. Raw values as in the
/// header (0x10000 | bits for floats, 0x20000 | bits for integers). Only the cases ELMKit names.
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
public enum MLMultiArrayDataType: Int, Sendable {
    /// `MLMultiArrayDataTypeDouble` — documentation/coreml/mlmultiarraydatatype/double
    case double = 65600
    /// `MLMultiArrayDataTypeFloat32` — documentation/coreml/mlmultiarraydatatype/float32
    case float32 = 65568
    /// `MLMultiArrayDataTypeFloat16` (iOS 16 / macOS 12) — documentation/coreml/mlmultiarraydatatype/float16
    @available(macOS 12.0, iOS 16.0, tvOS 16.0, watchOS 9.0, *)
    case float16 = 65552
    /// `MLMultiArrayDataTypeInt32` — documentation/coreml/mlmultiarraydatatype/int32
    case int32 = 131104
}

/// `protocol MLShapedArrayScalar` (Swift overlay, iOS 15 / macOS 12) —
/// https://developer.apple.com/documentation/coreml/mlshapedarrayscalar
@available(macOS 12.0, iOS 15.0, tvOS 15.0, watchOS 8.0, *)
public protocol MLShapedArrayScalar {
    /// `static var multiArrayDataType: MLMultiArrayDataType { get }` —
    /// documentation/coreml/mlshapedarrayscalar/multiarraydatatype
    static var multiArrayDataType: MLMultiArrayDataType { get }
}

/// Apple conforms Int32, Float, Double and Float16 (documentation/coreml/mlshapedarrayscalar, "Conforming Types").
@available(macOS 12.0, iOS 15.0, tvOS 15.0, watchOS 8.0, *)
extension Int32: MLShapedArrayScalar {
    public static var multiArrayDataType: MLMultiArrayDataType { .int32 }
}

@available(macOS 12.0, iOS 15.0, tvOS 15.0, watchOS 8.0, *)
extension Float: MLShapedArrayScalar {
    public static var multiArrayDataType: MLMultiArrayDataType { .float32 }
}

@available(macOS 12.0, iOS 15.0, tvOS 15.0, watchOS 8.0, *)
extension Double: MLShapedArrayScalar {
    public static var multiArrayDataType: MLMultiArrayDataType { .double }
}

@available(macOS 12.0, iOS 16.0, tvOS 16.0, watchOS 9.0, *)
extension Float16: MLShapedArrayScalar {
    public static var multiArrayDataType: MLMultiArrayDataType { .float16 }
}

/// `class MLMultiArray : NSObject` — MLMultiArray.h;
/// https://developer.apple.com/documentation/coreml/mlmultiarray (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
open class MLMultiArray: NSObject {
    /// `init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws` (`initWithShape:dataType:error:`) —
    /// documentation/coreml/mlmultiarray/init(shape:datatype:)
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws {
        throw CoreMLUnavailableError("MLMultiArray.init(shape:dataType:)")
    }

    /// `var dataType: MLMultiArrayDataType { get }` — documentation/coreml/mlmultiarray/datatype
    open var dataType: MLMultiArrayDataType { unavailable("MLMultiArray.dataType") }

    /// `var shape: [NSNumber] { get }` — documentation/coreml/mlmultiarray/shape
    open var shape: [NSNumber] { unavailable("MLMultiArray.shape") }

    /// `var strides: [NSNumber] { get }` — documentation/coreml/mlmultiarray/strides
    open var strides: [NSNumber] { unavailable("MLMultiArray.strides") }

    /// `subscript(idx: Int) -> NSNumber { get set }` (`objectAtIndexedSubscript:` /
    /// `setObject:atIndexedSubscript:`) — documentation/coreml/mlmultiarray, "Accessing elements"
    open subscript(idx: Int) -> NSNumber {
        get { unavailable("MLMultiArray.subscript(_:)") }
        set { unavailable("MLMultiArray.subscript(_:)") }
    }

    /// `func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R`
    /// (Swift overlay, iOS 15.4 / macOS 12.3) — documentation/coreml/mlmultiarray/withunsafebytes(_:)
    @available(macOS 12.3, iOS 15.4, tvOS 15.4, watchOS 8.5, *)
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        unavailable("MLMultiArray.withUnsafeBytes(_:)")
    }

    /// `func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R`
    /// (Swift overlay, iOS 15.4 / macOS 12.3; the second argument is the strides, in elements) —
    /// documentation/coreml/mlmultiarray/withunsafemutablebytes(_:)
    @available(macOS 12.3, iOS 15.4, tvOS 15.4, watchOS 8.5, *)
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R {
        unavailable("MLMultiArray.withUnsafeMutableBytes(_:)")
    }

    /// `func withUnsafeMutableBufferPointer<S, R>(ofType type: S.Type, _ body: (UnsafeMutableBufferPointer<S>, [Int]) throws -> R) rethrows -> R where S : MLShapedArrayScalar`
    /// (Swift overlay, iOS 15.4 / macOS 12.3) —
    /// documentation/coreml/mlmultiarray/withunsafemutablebufferpointer(oftype:_:)
    @available(macOS 12.3, iOS 15.4, tvOS 15.4, watchOS 8.5, *)
    public func withUnsafeMutableBufferPointer<S, R>(
        ofType type: S.Type, _ body: (UnsafeMutableBufferPointer<S>, [Int]) throws -> R
    ) rethrows -> R where S: MLShapedArrayScalar {
        unavailable("MLMultiArray.withUnsafeMutableBufferPointer(ofType:_:)")
    }
}

// MARK: - Features (MLFeatureValue.h, MLFeatureProvider.h, MLDictionaryFeatureProvider.h)

/// `class MLFeatureValue : NSObject` — MLFeatureValue.h;
/// https://developer.apple.com/documentation/coreml/mlfeaturevalue (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
open class MLFeatureValue: NSObject {
    /// Not Apple's: the stand-in needs a designated initializer to delegate to.
    init(standIn: Void) { super.init() }

    /// `convenience init(multiArray value: MLMultiArray)` (`featureValueWithMultiArray:`) —
    /// documentation/coreml/mlfeaturevalue/init(multiarray:)
    public convenience init(multiArray value: MLMultiArray) {
        unavailable("MLFeatureValue.init(multiArray:)")
    }

    /// `var multiArrayValue: MLMultiArray? { get }` — documentation/coreml/mlfeaturevalue/multiarrayvalue
    open var multiArrayValue: MLMultiArray? { unavailable("MLFeatureValue.multiArrayValue") }
}

/// `protocol MLFeatureProvider` — MLFeatureProvider.h;
/// https://developer.apple.com/documentation/coreml/mlfeatureprovider (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
public protocol MLFeatureProvider {
    /// `var featureNames: Set<String> { get }` — documentation/coreml/mlfeatureprovider/featurenames
    var featureNames: Set<String> { get }

    /// `func featureValue(for featureName: String) -> MLFeatureValue?` —
    /// documentation/coreml/mlfeatureprovider/featurevalue(for:)
    func featureValue(for featureName: String) -> MLFeatureValue?
}

/// `class MLDictionaryFeatureProvider : NSObject, MLFeatureProvider` — MLDictionaryFeatureProvider.h;
/// https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
open class MLDictionaryFeatureProvider: NSObject, MLFeatureProvider {
    /// `init(dictionary: [String : Any]) throws` (`initWithDictionary:error:`) —
    /// documentation/coreml/mldictionaryfeatureprovider/init(dictionary:)
    public init(dictionary: [String: Any]) throws {
        throw CoreMLUnavailableError("MLDictionaryFeatureProvider.init(dictionary:)")
    }

    open var featureNames: Set<String> { unavailable("MLDictionaryFeatureProvider.featureNames") }

    open func featureValue(for featureName: String) -> MLFeatureValue? {
        unavailable("MLDictionaryFeatureProvider.featureValue(for:)")
    }
}

// MARK: - Prediction (MLPredictionOptions.h, MLState.h)

/// `class MLPredictionOptions : NSObject` — MLPredictionOptions.h;
/// https://developer.apple.com/documentation/coreml/mlpredictionoptions (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
open class MLPredictionOptions: NSObject {
    /// `override init()` (NSObject's, inherited).
    public override init() { super.init() }
}

/// `class MLState : NSObject` — MLState.h; https://developer.apple.com/documentation/coreml/mlstate
/// (iOS 18 / macOS 15). Made only by `MLModel.makeState()`. The header's rule that ELMKit relies
/// on: predictions that use the same state must be serialised.
@available(macOS 15.0, iOS 18.0, tvOS 18.0, watchOS 11.0, visionOS 2.0, *)
open class MLState: NSObject {
    /// Not Apple's (there is no public initializer).
    init(standIn: Void) { super.init() }
}

// MARK: - MLModel (MLModel.h, MLModel+MLState.h, MLModel+MLModelCompilation.h, Swift overlay)

/// `class MLModel : NSObject` — MLModel.h; https://developer.apple.com/documentation/coreml/mlmodel
/// (iOS 11 / macOS 10.13).
@available(macOS 10.13, iOS 11.0, tvOS 11.0, watchOS 4.0, *)
open class MLModel: NSObject {
    /// Not Apple's: the stand-in needs a designated initializer to delegate to.
    init(standIn: Void) { super.init() }

    /// `convenience init(contentsOf url: URL, configuration: MLModelConfiguration) throws`
    /// (`modelWithContentsOfURL:configuration:error:`, iOS 12 / macOS 10.14) —
    /// documentation/coreml/mlmodel/init(contentsof:configuration:)
    @available(macOS 10.14, iOS 12.0, tvOS 12.0, watchOS 5.0, *)
    public convenience init(contentsOf url: URL, configuration: MLModelConfiguration) throws {
        throw CoreMLUnavailableError("MLModel.init(contentsOf:configuration:)")
    }

    /// `class func compileModel(at url: URL) async throws -> URL` (Swift overlay, iOS 16 / macOS 13) —
    /// documentation/coreml/mlmodel/compilemodel(at:)-45ao6
    @available(macOS 13.0, iOS 16.0, tvOS 16.0, watchOS 9.0, *)
    open class func compileModel(at url: URL) async throws -> URL {
        throw CoreMLUnavailableError("MLModel.compileModel(at:)")
    }

    /// `func makeState() -> MLState` (Swift overlay of `newState`, iOS 18 / macOS 15) —
    /// documentation/coreml/mlmodel/makestate()
    @available(macOS 15.0, iOS 18.0, tvOS 18.0, watchOS 11.0, visionOS 2.0, *)
    public func makeState() -> MLState {
        unavailable("MLModel.makeState()")
    }

    /// `func prediction(from input: any MLFeatureProvider, options: MLPredictionOptions) throws -> any MLFeatureProvider`
    /// (`predictionFromFeatures:options:error:`, iOS 12 / macOS 10.14) —
    /// documentation/coreml/mlmodel/prediction(from:options:)
    @available(macOS 10.14, iOS 12.0, tvOS 12.0, watchOS 5.0, *)
    open func prediction(from input: any MLFeatureProvider, options: MLPredictionOptions) throws -> any MLFeatureProvider {
        throw CoreMLUnavailableError("MLModel.prediction(from:options:)")
    }

    /// `func prediction(from inputFeatures: any MLFeatureProvider, using state: MLState, options: MLPredictionOptions) throws -> any MLFeatureProvider`
    /// (`predictionFromFeatures:usingState:options:error:`, MLModel+MLState.h, iOS 18 / macOS 15) —
    /// documentation/coreml/mlmodel/prediction(from:using:options:)
    @available(macOS 15.0, iOS 18.0, tvOS 18.0, watchOS 11.0, visionOS 2.0, *)
    open func prediction(from inputFeatures: any MLFeatureProvider, using state: MLState,
                         options: MLPredictionOptions) throws -> any MLFeatureProvider {
        throw CoreMLUnavailableError("MLModel.prediction(from:using:options:)")
    }
}
#endif
