// swift-tools-version: 6.0
// ELMKit runs OpenELM Core ML packages made by elm-export. No dependencies outside the toolchain:
// the tokenizer, JSON reading, sampling and argument parsing are all in this package.
import PackageDescription

let package = Package(
    name: "ELMHarness",
    // Core ML States (the stateful KV cache) need iOS 18 / macOS 15.
    platforms: [.iOS(.v18), .macOS(.v15)],
    products: [
        .library(name: "ELMKit", targets: ["ELMKit"]),
        .executable(name: "elm-run", targets: ["elm-run"]),
    ],
    targets: [
        .target(name: "ELMKit"),
        .executableTarget(name: "elm-run", dependencies: ["ELMKit"]),
        .testTarget(
            name: "ELMKitTests",
            dependencies: ["ELMKit", "elm-run"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
