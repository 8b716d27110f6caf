import ELMChat
import Foundation
#if canImport(SwiftUI)
import SwiftUI
#else
import SwiftUIStandIn
#endif
#if os(macOS)
import AppKit
#endif

/// A minimal chat app on ELMKit. In an iOS app the exported model folder ships inside the app
/// bundle as "Model" (see README); on macOS `swift run ELMChatApp /path/to/export` also works.
/// Without SwiftUI (Linux) it compiles against `SwiftUIStandIn`, whose `App.main()` says that the
/// app needs iOS/macOS and exits with status 1, as elm-run does without Core ML.
@main
struct ELMChatApp: App {
    #if os(macOS)
    @NSApplicationDelegateAdaptor(AppDelegate.self) private var appDelegate
    #endif

    /// The first command-line argument that is a folder (the export, on macOS), else nil: the
    /// bundled "Model" folder. Xcode adds arguments of its own, so anything else is skipped.
    private let modelFolder: URL? = CommandLine.arguments.dropFirst().first { argument in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) && isDirectory.boolValue
    }.map { URL(fileURLWithPath: $0, isDirectory: true) }

    var body: some Scene {
        WindowGroup {
            ChatView(modelFolder: modelFolder)
        }
    }
}

#if os(macOS)
/// Run by `swift run` there is no app bundle, and the process starts as a background one: make it
/// a regular app in front, so its window gets keyboard input.
@MainActor
final class AppDelegate: NSObject, NSApplicationDelegate {
    func applicationDidFinishLaunching(_ notification: Notification) {
        NSApp.setActivationPolicy(.regular)
        NSApp.activate()
    }
}
#endif
