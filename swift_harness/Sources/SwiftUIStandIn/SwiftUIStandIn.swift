// Stand-in for Apple's SwiftUI framework, so that the chat app's views (ELMChat's ChatView and
// ELMChatApp's app) are type-checked on platforms without it (Linux CI). ELMChat and ELMChatApp
// import this module only where `canImport(SwiftUI)` is false (see Package.swift); on Apple
// platforms the file compiles to nothing.
//
// Rules for this file (as for CoreMLStandIn):
// - Declare only what the package uses, and declare it as Apple's SDK does: the same names,
//   argument labels, optionality, generic shapes, result builders and actor isolation, as far as
//   needed to type-check the same way. Each declaration names the symbol it mirrors
//   (developer.apple.com/documentation/swiftui/...).
// - Nothing here works: a view's `body` and every modifier stop with fatalError. Nothing reaches
//   them at run time: `App.main()` prints that the app needs iOS/macOS and exits with status 1.
// - Availability attributes are copied from Apple's documentation; on Linux they are inert.
#if !canImport(SwiftUI)
import Foundation

@inline(never)
func unavailable(_ symbol: String) -> Never {
    fatalError("SwiftUI is not available on this platform (\(symbol))")
}

// MARK: - View and its result builder

/// `protocol View` — https://developer.apple.com/documentation/swiftui/view
/// (`@MainActor @preconcurrency public protocol View`).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@MainActor @preconcurrency
public protocol View {
    /// `associatedtype Body : View` — documentation/swiftui/view/body-swift.associatedtype
    associatedtype Body: View
    /// `@ViewBuilder @MainActor @preconcurrency var body: Self.Body { get }` —
    /// documentation/swiftui/view/body-swift.property
    @ViewBuilder @MainActor @preconcurrency var body: Self.Body { get }
}

/// `extension Never : View` — documentation/swiftui/view (Never's conformance; primitive views
/// have `Body == Never`).
extension Never: View {
    public typealias Body = Never
    public var body: Never { unavailable("Never.body") }
}

/// `extension Optional : View where Wrapped : View` — what `ViewBuilder.buildIf` returns.
extension Optional: View where Wrapped: View {
    public var body: Never { unavailable("Optional.body") }
}

/// `struct EmptyView` — documentation/swiftui/emptyview
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct EmptyView: View {
    /// `init()` — documentation/swiftui/emptyview/init()
    nonisolated public init() {}
    public var body: Never { unavailable("EmptyView.body") }
}

/// `struct TupleView<T>` — documentation/swiftui/tupleview
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct TupleView<T> {
    /// `var value: T` — documentation/swiftui/tupleview/value
    public var value: T
    /// `init(_ value: T)` — documentation/swiftui/tupleview/init(_:)
    public init(_ value: T) { self.value = value }
}

extension TupleView: View {
    public var body: Never { unavailable("TupleView.body") }
}

/// `struct _ConditionalContent<TrueContent, FalseContent>` — what `ViewBuilder.buildEither`
/// returns (documentation/swiftui/_conditionalcontent); a View where both are.
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct _ConditionalContent<TrueContent, FalseContent> {
    enum Storage {
        case trueContent(TrueContent)
        case falseContent(FalseContent)
    }
    let storage: Storage
}

extension _ConditionalContent: View where TrueContent: View, FalseContent: View {
    public var body: Never { unavailable("_ConditionalContent.body") }
}

/// `@resultBuilder struct ViewBuilder` — https://developer.apple.com/documentation/swiftui/viewbuilder
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@resultBuilder
public struct ViewBuilder {
    /// `static func buildExpression<Content>(_ content: Content) -> Content where Content : View` —
    /// documentation/swiftui/viewbuilder/buildexpression(_:)
    public static func buildExpression<Content: View>(_ content: Content) -> Content { content }

    /// `static func buildBlock() -> EmptyView` — documentation/swiftui/viewbuilder/buildblock()
    public static func buildBlock() -> EmptyView { EmptyView() }

    /// `static func buildBlock<Content>(_ content: Content) -> Content where Content : View` —
    /// documentation/swiftui/viewbuilder/buildblock(_:)
    public static func buildBlock<Content: View>(_ content: Content) -> Content { content }

    /// `static func buildBlock<each Content>(_ content: repeat each Content) -> TupleView<(repeat each Content)> where repeat each Content : View`
    /// — documentation/swiftui/viewbuilder/buildblock(_:)-4xajf (iOS 17 / macOS 14)
    @available(iOS 17.0, macOS 14.0, tvOS 17.0, watchOS 10.0, *)
    public static func buildBlock<each Content: View>(_ content: repeat each Content) -> TupleView<(repeat each Content)> {
        TupleView((repeat each content))
    }

    /// `static func buildIf<Content>(_ content: Content?) -> Content? where Content : View` —
    /// documentation/swiftui/viewbuilder/buildif(_:)
    public static func buildIf<Content: View>(_ content: Content?) -> Content? { content }

    /// `static func buildEither<TrueContent, FalseContent>(first: TrueContent) -> _ConditionalContent<TrueContent, FalseContent>`
    /// — documentation/swiftui/viewbuilder/buildeither(first:)
    public static func buildEither<TrueContent: View, FalseContent: View>(first: TrueContent) -> _ConditionalContent<TrueContent, FalseContent> {
        _ConditionalContent(storage: .trueContent(first))
    }

    /// `static func buildEither<TrueContent, FalseContent>(second: FalseContent) -> _ConditionalContent<TrueContent, FalseContent>`
    /// — documentation/swiftui/viewbuilder/buildeither(second:)
    public static func buildEither<TrueContent: View, FalseContent: View>(second: FalseContent) -> _ConditionalContent<TrueContent, FalseContent> {
        _ConditionalContent(storage: .falseContent(second))
    }
}

// MARK: - State and Binding

/// `@frozen @propertyWrapper struct State<Value>` — https://developer.apple.com/documentation/swiftui/state
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@propertyWrapper
public struct State<Value> {
    private var value: Value
    /// `init(wrappedValue value: Value)` — documentation/swiftui/state/init(wrappedvalue:)
    public init(wrappedValue value: Value) { self.value = value }
    /// `var wrappedValue: Value { get nonmutating set }` — documentation/swiftui/state/wrappedvalue
    public var wrappedValue: Value {
        get { value }
        nonmutating set { unavailable("State.wrappedValue") }
    }
    /// `var projectedValue: Binding<Value> { get }` — documentation/swiftui/state/projectedvalue
    public var projectedValue: Binding<Value> { unavailable("State.projectedValue") }
}

/// `extension State : Sendable where Value : Sendable`
extension State: Sendable where Value: Sendable {}

/// `@frozen @propertyWrapper @dynamicMemberLookup struct Binding<Value>` —
/// https://developer.apple.com/documentation/swiftui/binding
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@propertyWrapper @dynamicMemberLookup
public struct Binding<Value> {
    private let get: () -> Value
    private let set: (Value) -> Void
    /// `init(get: @escaping @isolated(any) @Sendable () -> Value, set: @escaping @isolated(any) @Sendable (Value) -> Void)`
    /// — documentation/swiftui/binding/init(get:set:) (the stand-in takes plain closures: only
    /// `State.projectedValue` would make one, and it is never called)
    init(get: @escaping () -> Value, set: @escaping (Value) -> Void) {
        self.get = get
        self.set = set
    }
    /// `var wrappedValue: Value { get nonmutating set }` — documentation/swiftui/binding/wrappedvalue
    public var wrappedValue: Value {
        get { unavailable("Binding.wrappedValue") }
        nonmutating set { unavailable("Binding.wrappedValue") }
    }
    /// `var projectedValue: Binding<Value> { get }` — documentation/swiftui/binding/projectedvalue
    public var projectedValue: Binding<Value> { self }
    /// `subscript<Subject>(dynamicMember keyPath: WritableKeyPath<Value, Subject>) -> Binding<Subject> { get }`
    /// — documentation/swiftui/binding/subscript(dynamicmember:)
    public subscript<Subject>(dynamicMember keyPath: WritableKeyPath<Value, Subject>) -> Binding<Subject> {
        unavailable("Binding.subscript(dynamicMember:)")
    }
}

// MARK: - Localized strings

/// `@frozen struct LocalizedStringKey : ExpressibleByStringInterpolation` —
/// https://developer.apple.com/documentation/swiftui/localizedstringkey (string literals become
/// keys: the overload `Text`, `Button`, `TextField` and `navigationTitle` pick for a literal).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct LocalizedStringKey: Equatable, ExpressibleByStringInterpolation, Sendable {
    let key: String
    /// `init(_ value: String)` — documentation/swiftui/localizedstringkey/init(_:)
    public init(_ value: String) { key = value }
    /// `init(stringLiteral value: String)` — documentation/swiftui/localizedstringkey/init(stringliteral:)
    public init(stringLiteral value: String) { key = value }
}

// MARK: - Layout values

/// `@frozen enum Edge` — https://developer.apple.com/documentation/swiftui/edge
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public enum Edge: Int8, Sendable {
    case top, leading, bottom, trailing

    /// `@frozen struct Edge.Set : OptionSet` — documentation/swiftui/edge/set
    public struct Set: OptionSet, Sendable {
        public let rawValue: Int8
        public init(rawValue: Int8) { self.rawValue = rawValue }
        /// `static let all: Edge.Set` — documentation/swiftui/edge/set/all
        public static let all = Set(rawValue: 0b1111)
        /// `static let horizontal: Edge.Set` — documentation/swiftui/edge/set/horizontal
        public static let horizontal = Set(rawValue: 0b1010)
        /// `static let vertical: Edge.Set` — documentation/swiftui/edge/set/vertical
        public static let vertical = Set(rawValue: 0b0101)
    }
}

/// `@frozen enum VerticalEdge` — https://developer.apple.com/documentation/swiftui/verticaledge
@available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
public enum VerticalEdge: Int8, Sendable {
    case top, bottom

    /// `@frozen struct VerticalEdge.Set : OptionSet` — documentation/swiftui/verticaledge/set
    public struct Set: OptionSet, Sendable {
        public let rawValue: Int8
        public init(rawValue: Int8) { self.rawValue = rawValue }
        /// `static let all: VerticalEdge.Set` — documentation/swiftui/verticaledge/set/all
        public static let all = Set(rawValue: 0b11)
    }
}

/// `@frozen struct HorizontalAlignment` — https://developer.apple.com/documentation/swiftui/horizontalalignment
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct HorizontalAlignment: Equatable, Sendable {
    let id: Int
    /// `static let leading: HorizontalAlignment` — documentation/swiftui/horizontalalignment/leading
    public static let leading = HorizontalAlignment(id: 0)
    /// `static let center: HorizontalAlignment` — documentation/swiftui/horizontalalignment/center
    public static let center = HorizontalAlignment(id: 1)
    /// `static let trailing: HorizontalAlignment` — documentation/swiftui/horizontalalignment/trailing
    public static let trailing = HorizontalAlignment(id: 2)
}

/// `@frozen struct VerticalAlignment` — https://developer.apple.com/documentation/swiftui/verticalalignment
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct VerticalAlignment: Equatable, Sendable {
    let id: Int
    /// `static let center: VerticalAlignment` — documentation/swiftui/verticalalignment/center
    public static let center = VerticalAlignment(id: 1)
}

/// `@frozen struct Alignment` — https://developer.apple.com/documentation/swiftui/alignment
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Alignment: Equatable, Sendable {
    /// `var horizontal: HorizontalAlignment` — documentation/swiftui/alignment/horizontal
    public var horizontal: HorizontalAlignment
    /// `var vertical: VerticalAlignment` — documentation/swiftui/alignment/vertical
    public var vertical: VerticalAlignment
    /// `init(horizontal: HorizontalAlignment, vertical: VerticalAlignment)` —
    /// documentation/swiftui/alignment/init(horizontal:vertical:)
    public init(horizontal: HorizontalAlignment, vertical: VerticalAlignment) {
        self.horizontal = horizontal
        self.vertical = vertical
    }
    /// `static let center: Alignment` — documentation/swiftui/alignment/center
    public static let center = Alignment(horizontal: .center, vertical: .center)
    /// `static let leading: Alignment` — documentation/swiftui/alignment/leading
    public static let leading = Alignment(horizontal: .leading, vertical: .center)
    /// `static let trailing: Alignment` — documentation/swiftui/alignment/trailing
    public static let trailing = Alignment(horizontal: .trailing, vertical: .center)
}

/// `@frozen struct UnitPoint` — https://developer.apple.com/documentation/swiftui/unitpoint
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct UnitPoint: Hashable, Sendable {
    /// `var x: CGFloat` — documentation/swiftui/unitpoint/x
    public var x: CGFloat
    /// `var y: CGFloat` — documentation/swiftui/unitpoint/y
    public var y: CGFloat
    /// `init(x: CGFloat, y: CGFloat)` — documentation/swiftui/unitpoint/init(x:y:)
    public init(x: CGFloat, y: CGFloat) {
        self.x = x
        self.y = y
    }
    /// `static let bottom: UnitPoint` — documentation/swiftui/unitpoint/bottom
    public static let bottom = UnitPoint(x: 0.5, y: 1)
}

/// `@frozen enum Axis` — https://developer.apple.com/documentation/swiftui/axis
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public enum Axis: Int8, Sendable {
    /// `case horizontal` — documentation/swiftui/axis/horizontal
    case horizontal
    /// `case vertical` — documentation/swiftui/axis/vertical
    case vertical
}

/// `@frozen enum Visibility` — https://developer.apple.com/documentation/swiftui/visibility
@available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
public enum Visibility: Hashable, Sendable {
    /// `case automatic` — documentation/swiftui/visibility/automatic
    case automatic
    /// `case visible` — documentation/swiftui/visibility/visible
    case visible
    /// `case hidden` — documentation/swiftui/visibility/hidden
    case hidden
}

// MARK: - Styles, colors, fonts, shapes

/// `protocol ShapeStyle : Sendable` — https://developer.apple.com/documentation/swiftui/shapestyle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public protocol ShapeStyle: Sendable {}

/// `@frozen struct HierarchicalShapeStyle` — https://developer.apple.com/documentation/swiftui/hierarchicalshapestyle
@available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
public struct HierarchicalShapeStyle: ShapeStyle {
    let level: Int
}

@available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
extension ShapeStyle where Self == HierarchicalShapeStyle {
    /// `static var secondary: HierarchicalShapeStyle { get }` — documentation/swiftui/shapestyle/secondary
    public static var secondary: HierarchicalShapeStyle { HierarchicalShapeStyle(level: 1) }
}

/// `@frozen struct Color` — https://developer.apple.com/documentation/swiftui/color
/// (a `ShapeStyle` and a `View`).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Color: Hashable, ShapeStyle, View {
    let name: String
    let alpha: Double
    /// `static var accentColor: Color { get }` — documentation/swiftui/color/accentcolor
    public static var accentColor: Color { Color(name: "accentColor", alpha: 1) }
    /// `static let secondary: Color` — documentation/swiftui/color/secondary
    public static let secondary = Color(name: "secondary", alpha: 1)
    /// `func opacity(_ opacity: Double) -> Color` — documentation/swiftui/color/opacity(_:)
    public func opacity(_ opacity: Double) -> Color { Color(name: name, alpha: alpha * opacity) }
    public var body: Never { unavailable("Color.body") }
}

/// `struct Font` — https://developer.apple.com/documentation/swiftui/font
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Font: Hashable, Sendable {
    let style: String
    /// `static let title2: Font` — documentation/swiftui/font/title2 (iOS 14 / macOS 11)
    @available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
    public static let title2 = Font(style: "title2")
    /// `static let caption: Font` — documentation/swiftui/font/caption
    public static let caption = Font(style: "caption")
    /// `static let caption2: Font` — documentation/swiftui/font/caption2 (iOS 14 / macOS 11)
    @available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
    public static let caption2 = Font(style: "caption2")
}

/// `protocol Shape : Sendable, Animatable, View` — https://developer.apple.com/documentation/swiftui/shape
/// (its `path(in:)` requirement is left out: nothing here draws).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public protocol Shape: Sendable, View {}

/// `@frozen struct FillStyle` — https://developer.apple.com/documentation/swiftui/fillstyle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct FillStyle: Equatable, Sendable {
    /// `var isEOFilled: Bool` — documentation/swiftui/fillstyle/iseofilled
    public var isEOFilled: Bool
    /// `var isAntialiased: Bool` — documentation/swiftui/fillstyle/isantialiased
    public var isAntialiased: Bool
    /// `init(eoFill: Bool = false, antialiased: Bool = true)` —
    /// documentation/swiftui/fillstyle/init(eofill:antialiased:)
    public init(eoFill: Bool = false, antialiased: Bool = true) {
        isEOFilled = eoFill
        isAntialiased = antialiased
    }
}

/// `@frozen struct RoundedRectangle` — https://developer.apple.com/documentation/swiftui/roundedrectangle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct RoundedRectangle: Shape {
    /// `var cornerSize: CGSize` — documentation/swiftui/roundedrectangle/cornersize
    public var cornerSize: CGSize
    /// `init(cornerRadius: CGFloat, style: RoundedCornerStyle = .continuous)` —
    /// documentation/swiftui/roundedrectangle/init(cornerradius:style:) (`style` left out: unused)
    public init(cornerRadius: CGFloat) { cornerSize = CGSize(width: cornerRadius, height: cornerRadius) }
    public var body: Never { unavailable("RoundedRectangle.body") }
}

/// `protocol ListStyle` — https://developer.apple.com/documentation/swiftui/liststyle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public protocol ListStyle {}

/// `struct PlainListStyle` — https://developer.apple.com/documentation/swiftui/plainliststyle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct PlainListStyle: ListStyle {
    /// `init()` — documentation/swiftui/plainliststyle/init()
    public init() {}
}

@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
extension ListStyle where Self == PlainListStyle {
    /// `static var plain: PlainListStyle { get }` — documentation/swiftui/liststyle/plain
    public static var plain: PlainListStyle { PlainListStyle() }
}

/// `protocol TextFieldStyle` — https://developer.apple.com/documentation/swiftui/textfieldstyle
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public protocol TextFieldStyle {}

/// `struct RoundedBorderTextFieldStyle` — https://developer.apple.com/documentation/swiftui/roundedbordertextfieldstyle
@available(iOS 13.0, macOS 10.15, *)
@available(tvOS, unavailable)
@available(watchOS, unavailable)
public struct RoundedBorderTextFieldStyle: TextFieldStyle {
    /// `init()` — documentation/swiftui/roundedbordertextfieldstyle/init()
    public init() {}
}

@available(iOS 13.0, macOS 10.15, *)
@available(tvOS, unavailable)
@available(watchOS, unavailable)
extension TextFieldStyle where Self == RoundedBorderTextFieldStyle {
    /// `static var roundedBorder: RoundedBorderTextFieldStyle { get }` —
    /// documentation/swiftui/textfieldstyle/roundedborder
    public static var roundedBorder: RoundedBorderTextFieldStyle { RoundedBorderTextFieldStyle() }
}

/// `protocol LabelStyle` — https://developer.apple.com/documentation/swiftui/labelstyle
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
public protocol LabelStyle {}

/// `struct IconOnlyLabelStyle` — https://developer.apple.com/documentation/swiftui/icononlylabelstyle
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
public struct IconOnlyLabelStyle: LabelStyle {
    /// `init()` — documentation/swiftui/icononlylabelstyle/init()
    public init() {}
}

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
extension LabelStyle where Self == IconOnlyLabelStyle {
    /// `static var iconOnly: IconOnlyLabelStyle { get }` — documentation/swiftui/labelstyle/icononly
    public static var iconOnly: IconOnlyLabelStyle { IconOnlyLabelStyle() }
}

/// `protocol TextSelectability` — https://developer.apple.com/documentation/swiftui/textselectability
@available(iOS 15.0, macOS 12.0, *)
@available(tvOS, unavailable)
@available(watchOS, unavailable)
public protocol TextSelectability {}

/// `struct EnabledTextSelectability` — https://developer.apple.com/documentation/swiftui/enabledtextselectability
@available(iOS 15.0, macOS 12.0, *)
@available(tvOS, unavailable)
@available(watchOS, unavailable)
public struct EnabledTextSelectability: TextSelectability {}

@available(iOS 15.0, macOS 12.0, *)
@available(tvOS, unavailable)
@available(watchOS, unavailable)
extension TextSelectability where Self == EnabledTextSelectability {
    /// `static var enabled: EnabledTextSelectability { get }` — documentation/swiftui/textselectability/enabled
    public static var enabled: EnabledTextSelectability { EnabledTextSelectability() }
}

// MARK: - Views

/// `@frozen struct Text` — https://developer.apple.com/documentation/swiftui/text
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Text: Equatable, View {
    let content: String
    /// `init(_ key: LocalizedStringKey, tableName: String? = nil, bundle: Bundle? = nil, comment: StaticString? = nil)`
    /// — documentation/swiftui/text/init(_:tablename:bundle:comment:)
    public init(_ key: LocalizedStringKey, tableName: String? = nil, bundle: Bundle? = nil, comment: StaticString? = nil) {
        content = key.key
    }
    /// `init<S>(_ content: S) where S : StringProtocol` — documentation/swiftui/text/init(_:)-9d1g4
    @_disfavoredOverload
    public init<S: StringProtocol>(_ content: S) { self.content = String(content) }
    public var body: Never { unavailable("Text.body") }
}

/// `struct Image` — https://developer.apple.com/documentation/swiftui/image (only the type: the
/// icon of `Button(_:systemImage:action:)`'s label).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Image: Equatable, View {
    let systemName: String
    /// `init(systemName: String)` — documentation/swiftui/image/init(systemname:)
    public init(systemName: String) { self.systemName = systemName }
    public var body: Never { unavailable("Image.body") }
}

/// `struct Label<Title, Icon> where Title : View, Icon : View` —
/// https://developer.apple.com/documentation/swiftui/label (only the type: `Button`'s label).
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
public struct Label<Title: View, Icon: View>: View {
    public var body: Never { unavailable("Label.body") }
}

/// `@frozen struct Spacer` — https://developer.apple.com/documentation/swiftui/spacer
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct Spacer: View {
    /// `var minLength: CGFloat?` — documentation/swiftui/spacer/minlength
    public var minLength: CGFloat?
    /// `init(minLength: CGFloat? = nil)` — documentation/swiftui/spacer/init(minlength:)
    public init(minLength: CGFloat? = nil) { self.minLength = minLength }
    public var body: Never { unavailable("Spacer.body") }
}

/// `@frozen struct HStack<Content> where Content : View` — https://developer.apple.com/documentation/swiftui/hstack
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct HStack<Content: View>: View {
    /// `init(alignment: VerticalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content)`
    /// — documentation/swiftui/hstack/init(alignment:spacing:content:)
    public init(alignment: VerticalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content) {}
    public var body: Never { unavailable("HStack.body") }
}

/// `@frozen struct VStack<Content> where Content : View` — https://developer.apple.com/documentation/swiftui/vstack
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct VStack<Content: View>: View {
    /// `init(alignment: HorizontalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content)`
    /// — documentation/swiftui/vstack/init(alignment:spacing:content:)
    public init(alignment: HorizontalAlignment = .center, spacing: CGFloat? = nil, @ViewBuilder content: () -> Content) {}
    public var body: Never { unavailable("VStack.body") }
}

/// `struct NavigationPath` — https://developer.apple.com/documentation/swiftui/navigationpath
/// (only the type: `NavigationStack`'s default `Data`).
@available(iOS 16.0, macOS 13.0, tvOS 16.0, watchOS 9.0, *)
public struct NavigationPath {}

/// `@MainActor @preconcurrency struct NavigationStack<Data, Root> where Root : View` —
/// https://developer.apple.com/documentation/swiftui/navigationstack
@available(iOS 16.0, macOS 13.0, tvOS 16.0, watchOS 9.0, *)
@MainActor @preconcurrency
public struct NavigationStack<Data, Root: View>: View {
    public var body: Never { unavailable("NavigationStack.body") }
}

@available(iOS 16.0, macOS 13.0, tvOS 16.0, watchOS 9.0, *)
extension NavigationStack where Data == NavigationPath {
    /// `init(@ViewBuilder root: () -> Root) where Data == NavigationPath` —
    /// documentation/swiftui/navigationstack/init(root:)
    public init(@ViewBuilder root: () -> Root) {}
}

/// `struct ForEach<Data, ID, Content> where Data : RandomAccessCollection, ID : Hashable` —
/// https://developer.apple.com/documentation/swiftui/foreach (only the type: the content of
/// `List(_:rowContent:)`).
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
public struct ForEach<Data: RandomAccessCollection, ID: Hashable, Content> {
    /// `var data: Data` — documentation/swiftui/foreach/data
    public var data: Data
    /// `var content: (Data.Element) -> Content` — documentation/swiftui/foreach/content
    public var content: (Data.Element) -> Content
}

extension ForEach: View where Content: View {
    public var body: Never { unavailable("ForEach.body") }
}

@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
extension ForEach where Content: View {
    /// `init(_ data: Data, id: KeyPath<Data.Element, ID>, @ViewBuilder content: @escaping (Data.Element) -> Content)`
    /// — documentation/swiftui/foreach/init(_:id:content:)
    public init(_ data: Data, id: KeyPath<Data.Element, ID>, @ViewBuilder content: @escaping (Data.Element) -> Content) {
        self.data = data
        self.content = content
    }
}

/// `@MainActor @preconcurrency struct List<SelectionValue, Content> where SelectionValue : Hashable, Content : View`
/// — https://developer.apple.com/documentation/swiftui/list
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@MainActor @preconcurrency
public struct List<SelectionValue: Hashable, Content: View>: View {
    public var body: Never { unavailable("List.body") }
}

@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
extension List where SelectionValue == Never {
    /// `init<Data, RowContent>(_ data: Data, @ViewBuilder rowContent: @escaping (Data.Element) -> RowContent) where Content == ForEach<Data, Data.Element.ID, RowContent>, Data : RandomAccessCollection, RowContent : View, Data.Element : Identifiable`
    /// — documentation/swiftui/list/init(_:rowcontent:)-7vpgz
    public init<Data: RandomAccessCollection, RowContent: View>(
        _ data: Data, @ViewBuilder rowContent: @escaping (Data.Element) -> RowContent
    ) where Content == ForEach<Data, Data.Element.ID, RowContent>, Data.Element: Identifiable {}
}

/// `struct ScrollViewProxy` — https://developer.apple.com/documentation/swiftui/scrollviewproxy
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
public struct ScrollViewProxy {
    /// `func scrollTo<ID>(_ id: ID, anchor: UnitPoint? = nil) where ID : Hashable` —
    /// documentation/swiftui/scrollviewproxy/scrollto(_:anchor:)
    public func scrollTo<ID: Hashable>(_ id: ID, anchor: UnitPoint? = nil) { unavailable("ScrollViewProxy.scrollTo") }
}

/// `@frozen struct ScrollViewReader<Content> where Content : View` —
/// https://developer.apple.com/documentation/swiftui/scrollviewreader
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
public struct ScrollViewReader<Content: View>: View {
    /// `var content: (ScrollViewProxy) -> Content` — documentation/swiftui/scrollviewreader/content
    public var content: (ScrollViewProxy) -> Content
    /// `init(@ViewBuilder content: @escaping (ScrollViewProxy) -> Content)` —
    /// documentation/swiftui/scrollviewreader/init(content:)
    public init(@ViewBuilder content: @escaping (ScrollViewProxy) -> Content) { self.content = content }
    public var body: Never { unavailable("ScrollViewReader.body") }
}

/// `@MainActor @preconcurrency struct TextField<Label> where Label : View` —
/// https://developer.apple.com/documentation/swiftui/textfield
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@MainActor @preconcurrency
public struct TextField<Label: View>: View {
    public var body: Never { unavailable("TextField.body") }
}

@available(iOS 16.0, macOS 13.0, tvOS 16.0, watchOS 9.0, *)
extension TextField where Label == Text {
    /// `init(_ titleKey: LocalizedStringKey, text: Binding<String>, axis: Axis)` —
    /// documentation/swiftui/textfield/init(_:text:axis:)-8rujz
    public init(_ titleKey: LocalizedStringKey, text: Binding<String>, axis: Axis) {}
}

/// `@MainActor @preconcurrency struct Button<Label> where Label : View` —
/// https://developer.apple.com/documentation/swiftui/button
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@MainActor @preconcurrency
public struct Button<Label: View>: View {
    public var body: Never { unavailable("Button.body") }
}

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
extension Button where Label == SwiftUIStandIn.Label<Text, Image> {
    /// `init(_ titleKey: LocalizedStringKey, systemImage: String, action: @escaping @MainActor () -> Void)`
    /// — documentation/swiftui/button/init(_:systemimage:action:)-1ey2w
    public init(_ titleKey: LocalizedStringKey, systemImage: String, action: @escaping @MainActor () -> Void) {}
}

/// `@MainActor @preconcurrency struct Picker<Label, SelectionValue, Content> where Label : View, SelectionValue : Hashable, Content : View`
/// — https://developer.apple.com/documentation/swiftui/picker
@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
@MainActor @preconcurrency
public struct Picker<Label: View, SelectionValue: Hashable, Content: View>: View {
    public var body: Never { unavailable("Picker.body") }
}

@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
extension Picker where Label == Text {
    /// `nonisolated init(_ titleKey: LocalizedStringKey, selection: Binding<SelectionValue>, @ViewBuilder content: () -> Content)`
    /// — documentation/swiftui/picker/init(_:selection:content:)-5njtq
    nonisolated public init(_ titleKey: LocalizedStringKey, selection: Binding<SelectionValue>, @ViewBuilder content: () -> Content) {}
}

// MARK: - View modifiers

@available(iOS 13.0, macOS 10.15, tvOS 13.0, watchOS 6.0, *)
extension View {
    /// `nonisolated func listStyle<S>(_ style: S) -> some View where S : ListStyle` —
    /// documentation/swiftui/view/liststyle(_:)
    nonisolated public func listStyle<S: ListStyle>(_ style: S) -> some View { unavailable("View.listStyle") }

    /// `nonisolated func onChange<V>(of value: V, initial: Bool = false, _ action: @escaping () -> Void) -> some View where V : Equatable`
    /// — documentation/swiftui/view/onchange(of:initial:_:)-8wgw9 (iOS 17 / macOS 14)
    @available(iOS 17.0, macOS 14.0, tvOS 17.0, watchOS 10.0, *)
    nonisolated public func onChange<V: Equatable>(of value: V, initial: Bool = false, _ action: @escaping () -> Void) -> some View {
        unavailable("View.onChange")
    }

    /// `nonisolated func navigationTitle(_ titleKey: LocalizedStringKey) -> some View` —
    /// documentation/swiftui/view/navigationtitle(_:)-5di1u (iOS 14 / macOS 11)
    @available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
    nonisolated public func navigationTitle(_ titleKey: LocalizedStringKey) -> some View { unavailable("View.navigationTitle") }

    /// `nonisolated func task(name: String? = nil, priority: TaskPriority = .userInitiated, file: String = #fileID, line: Int = #line, _ action: sending @escaping @isolated(any) () async -> Void) -> some View`
    /// — documentation/swiftui/view/task(name:priority:file:line:_:) (iOS 15 / macOS 12)
    @available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
    nonisolated public func task(
        name: String? = nil, priority: TaskPriority = .userInitiated, file: String = #fileID, line: Int = #line,
        _ action: sending @escaping @isolated(any) () async -> Void
    ) -> some View {
        unavailable("View.task")
    }

    /// `nonisolated func lineLimit(_ number: Int?) -> some View` — documentation/swiftui/view/linelimit(_:)-513mb
    nonisolated public func lineLimit(_ number: Int?) -> some View { unavailable("View.lineLimit") }

    /// `nonisolated func lineLimit(_ limit: ClosedRange<Int>) -> some View` —
    /// documentation/swiftui/view/linelimit(_:)-7ufty (iOS 16 / macOS 13)
    @available(iOS 16.0, macOS 13.0, tvOS 16.0, watchOS 9.0, *)
    nonisolated public func lineLimit(_ limit: ClosedRange<Int>) -> some View { unavailable("View.lineLimit") }

    /// `nonisolated func font(_ font: Font?) -> some View` — documentation/swiftui/view/font(_:)
    nonisolated public func font(_ font: Font?) -> some View { unavailable("View.font") }

    /// `nonisolated func foregroundStyle<S>(_ style: S) -> some View where S : ShapeStyle` —
    /// documentation/swiftui/view/foregroundstyle(_:) (iOS 15 / macOS 12)
    @available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
    nonisolated public func foregroundStyle<S: ShapeStyle>(_ style: S) -> some View { unavailable("View.foregroundStyle") }

    /// `nonisolated func padding(_ edges: Edge.Set = .all, _ length: CGFloat? = nil) -> some View` —
    /// documentation/swiftui/view/padding(_:_:)
    nonisolated public func padding(_ edges: Edge.Set = .all, _ length: CGFloat? = nil) -> some View { unavailable("View.padding") }

    /// `nonisolated func padding(_ length: CGFloat) -> some View` — documentation/swiftui/view/padding(_:)-68shk
    nonisolated public func padding(_ length: CGFloat) -> some View { unavailable("View.padding") }

    /// `nonisolated func monospacedDigit() -> some View` — documentation/swiftui/view/monospaceddigit()
    /// (iOS 15 / macOS 12)
    @available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
    nonisolated public func monospacedDigit() -> some View { unavailable("View.monospacedDigit") }

    /// `nonisolated func textFieldStyle<S>(_ style: S) -> some View where S : TextFieldStyle` —
    /// documentation/swiftui/view/textfieldstyle(_:)
    nonisolated public func textFieldStyle<S: TextFieldStyle>(_ style: S) -> some View { unavailable("View.textFieldStyle") }

    /// `nonisolated func disabled(_ disabled: Bool) -> some View` — documentation/swiftui/view/disabled(_:)
    nonisolated public func disabled(_ disabled: Bool) -> some View { unavailable("View.disabled") }

    /// `nonisolated func labelStyle<S>(_ style: S) -> some View where S : LabelStyle` —
    /// documentation/swiftui/view/labelstyle(_:) (iOS 14 / macOS 11)
    @available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
    nonisolated public func labelStyle<S: LabelStyle>(_ style: S) -> some View { unavailable("View.labelStyle") }

    /// `nonisolated func background<S, T>(_ style: S, in shape: T, fillStyle: FillStyle = FillStyle()) -> some View where S : ShapeStyle, T : Shape`
    /// — documentation/swiftui/view/background(_:in:fillstyle:)-20tq5 (iOS 15 / macOS 12)
    @available(iOS 15.0, macOS 12.0, tvOS 15.0, watchOS 8.0, *)
    nonisolated public func background<S: ShapeStyle, T: Shape>(_ style: S, in shape: T, fillStyle: FillStyle = FillStyle()) -> some View {
        unavailable("View.background")
    }

    /// `nonisolated func textSelection<S>(_ selectability: S) -> some View where S : TextSelectability` —
    /// documentation/swiftui/view/textselection(_:) (iOS 15 / macOS 12; not tvOS, watchOS)
    @available(iOS 15.0, macOS 12.0, *)
    @available(tvOS, unavailable)
    @available(watchOS, unavailable)
    nonisolated public func textSelection<S: TextSelectability>(_ selectability: S) -> some View { unavailable("View.textSelection") }

    /// `nonisolated func frame(minWidth: CGFloat? = nil, idealWidth: CGFloat? = nil, maxWidth: CGFloat? = nil, minHeight: CGFloat? = nil, idealHeight: CGFloat? = nil, maxHeight: CGFloat? = nil, alignment: Alignment = .center) -> some View`
    /// — documentation/swiftui/view/frame(minwidth:idealwidth:maxwidth:minheight:idealheight:maxheight:alignment:)
    nonisolated public func frame(
        minWidth: CGFloat? = nil, idealWidth: CGFloat? = nil, maxWidth: CGFloat? = nil,
        minHeight: CGFloat? = nil, idealHeight: CGFloat? = nil, maxHeight: CGFloat? = nil,
        alignment: Alignment = .center
    ) -> some View {
        unavailable("View.frame")
    }

    /// `nonisolated func listRowSeparator(_ visibility: Visibility, edges: VerticalEdge.Set = .all) -> some View`
    /// — documentation/swiftui/view/listrowseparator(_:edges:) (iOS 15 / macOS 13; not tvOS)
    @available(iOS 15.0, macOS 13.0, watchOS 8.0, *)
    @available(tvOS, unavailable)
    nonisolated public func listRowSeparator(_ visibility: Visibility, edges: VerticalEdge.Set = .all) -> some View {
        unavailable("View.listRowSeparator")
    }

    /// `nonisolated func id<ID>(_ id: ID) -> some View where ID : Hashable` — documentation/swiftui/view/id(_:)
    nonisolated public func id<ID: Hashable>(_ id: ID) -> some View { unavailable("View.id") }

    /// `nonisolated func tag<V>(_ tag: V, includeOptional: Bool = true) -> some View where V : Hashable` —
    /// documentation/swiftui/view/tag(_:includeoptional:) (what a `Picker` row selects)
    nonisolated public func tag<V: Hashable>(_ tag: V, includeOptional: Bool = true) -> some View { unavailable("View.tag") }
}

// MARK: - App and Scene

/// `@MainActor @preconcurrency protocol Scene` — https://developer.apple.com/documentation/swiftui/scene
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@MainActor @preconcurrency
public protocol Scene {
    /// `associatedtype Body : Scene` — documentation/swiftui/scene/body-swift.associatedtype
    associatedtype Body: Scene
    /// `@SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }` —
    /// documentation/swiftui/scene/body-swift.property
    @SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }
}

/// `extension Never : Scene` — primitive scenes have `Body == Never`.
extension Never: Scene {}

/// `@resultBuilder struct SceneBuilder` — https://developer.apple.com/documentation/swiftui/scenebuilder
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@resultBuilder
public struct SceneBuilder {
    /// `static func buildBlock<Content>(_ content: Content) -> Content where Content : Scene` —
    /// documentation/swiftui/scenebuilder/buildblock(_:)
    public static func buildBlock<Content: Scene>(_ content: Content) -> Content { content }
}

/// `@MainActor @preconcurrency struct WindowGroup<Content> where Content : View` —
/// https://developer.apple.com/documentation/swiftui/windowgroup
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@MainActor @preconcurrency
public struct WindowGroup<Content: View>: Scene {
    /// `init(@ViewBuilder content: () -> Content)` — documentation/swiftui/windowgroup/init(content:)
    public init(@ViewBuilder content: () -> Content) {}
    public var body: Never { unavailable("WindowGroup.body") }
}

/// `@MainActor @preconcurrency protocol App` — https://developer.apple.com/documentation/swiftui/app
@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
@MainActor @preconcurrency
public protocol App {
    /// `associatedtype Body : Scene` — documentation/swiftui/app/body-swift.associatedtype
    associatedtype Body: Scene
    /// `@SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }` —
    /// documentation/swiftui/app/body-swift.property
    @SceneBuilder @MainActor @preconcurrency var body: Self.Body { get }
    /// `@MainActor @preconcurrency init()` — documentation/swiftui/app/init()
    @MainActor @preconcurrency init()
}

@available(iOS 14.0, macOS 11.0, tvOS 14.0, watchOS 7.0, *)
extension App {
    /// `@MainActor @preconcurrency static func main()` — documentation/swiftui/app/main()
    /// (what `@main` calls). Here there is no app to run: it says so on stderr and exits with
    /// status 1, as elm-run does without Core ML.
    @MainActor @preconcurrency public static func main() {
        FileHandle.standardError.write(Data("ELMChatApp: the chat app needs iOS 18 or macOS 15 (SwiftUI and Core ML); see swift_harness/README.md\n".utf8))
        exit(1)
    }
}
#endif
