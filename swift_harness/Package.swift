// swift-tools-version: 6.0
// ELMKit runs OpenELM Core ML packages made by elm-export. No dependencies outside the toolchain:
// the tokenizer, JSON reading, sampling and argument parsing are all in this package.
import PackageDescription

/// Platforms without Core ML. There ELMKit compiles its Core ML code against `CoreMLStandIn`,
/// declarations that mirror Apple's, so a wrong call fails the Linux build too.
let withoutCoreML: [Platform] = [.linux, .windows, .android, .wasi, .openbsd]

let package = Package(
    name: "ELMHarness",
    // Core ML States (the stateful KV cache) need iOS 18 / macOS 15.
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
        .target(
            name: "ELMKit",
            dependencies: [.target(name: "CoreMLStandIn", condition: .when(platforms: withoutCoreML))]
        ),
        .executableTarget(name: "elm-run", dependencies: ["ELMKit"]),
        // The chat app's logic (ChatSession, ChatMessage) and, where SwiftUI exists, its views.
        .target(name: "ELMChat", dependencies: ["ELMKit"]),
        // The app's entry point: a SwiftUI app on iOS/macOS, a one-line notice elsewhere.
        .executableTarget(name: "ELMChatApp", dependencies: ["ELMChat"]),
        .testTarget(
            name: "ELMKitTests",
            dependencies: ["ELMKit", "elm-run"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "ELMChatTests", dependencies: ["ELMChat", "ELMKit"]),
    ]
)
