// swift-tools-version: 6.0
// ELMKit runs OpenELM models made by elm-export with Core ML (.mlpackage) or Core AI (.aimodel).
// No dependencies outside the toolchain:
// the tokenizer, JSON reading, sampling and argument parsing are all in this package.
import PackageDescription

/// Platforms without Core ML. There ELMKit compiles its Core ML code against `CoreMLStandIn` and
/// its Core AI code against `CoreAIStandIn`, declarations that mirror Apple's, so a wrong call
/// fails the Linux build too. SwiftUI is missing on the same platforms: there ELMChat's views and
/// ELMChatApp compile against `SwiftUIStandIn`. (On Apple platforms whose SDK predates Core AI,
/// ELMKit leaves its Core AI code out instead.)
let withoutCoreML: [Platform] = [.linux, .windows, .android, .wasi, .openbsd]

let package = Package(
    name: "ELMHarness",
    // Core ML States (the stateful KV cache) need iOS 18 / macOS 15; Core AI, iOS 27 / macOS 27,
    // checked at run time so the package still runs Core ML exports on older systems.
    platforms: [.iOS(.v18), .macOS(.v15)],
    products: [
        .library(name: "ELMKit", targets: ["ELMKit"]),
        .library(name: "ELMChat", targets: ["ELMChat"]),
        .executable(name: "elm-run", targets: ["elm-run"]),
        .executable(name: "ELMChatApp", targets: ["ELMChatApp"]),
    ],
    targets: [
        // Not a product: only ELMKit uses it, and only where Core ML is missing.
        .target(name: "CoreMLStandIn"),
        // Not a product: only ELMKit uses it, and only where Core ML (and so Core AI) is missing.
        .target(name: "CoreAIStandIn"),
        // Not a product: only ELMChat and ELMChatApp use it, and only where SwiftUI is missing.
        .target(name: "SwiftUIStandIn"),
        .target(
            name: "ELMKit",
            dependencies: [
                .target(name: "CoreMLStandIn", condition: .when(platforms: withoutCoreML)),
                .target(name: "CoreAIStandIn", condition: .when(platforms: withoutCoreML)),
            ]
        ),
        .executableTarget(name: "elm-run", dependencies: ["ELMKit"]),
        // The chat app's logic (ChatSession, ChatMessage) and its views (type-checked everywhere).
        .target(
            name: "ELMChat",
            dependencies: ["ELMKit", .target(name: "SwiftUIStandIn", condition: .when(platforms: withoutCoreML))]
        ),
        // The app's entry point: a SwiftUI app on iOS/macOS, a one-line notice elsewhere.
        .executableTarget(
            name: "ELMChatApp",
            dependencies: ["ELMChat", .target(name: "SwiftUIStandIn", condition: .when(platforms: withoutCoreML))]
        ),
        .testTarget(
            name: "ELMKitTests",
            dependencies: ["ELMKit", "elm-run"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "ELMChatTests", dependencies: ["ELMChat", "ELMKit"]),
    ]
)
