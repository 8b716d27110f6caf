import SwiftUI

/// A minimal chat app on ELMKit: the exported model folder ships inside the app bundle.
@main
struct ELMChatApp: App {
    var body: some Scene {
        WindowGroup {
            ChatView()
        }
    }
}
