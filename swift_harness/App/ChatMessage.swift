import Foundation

struct ChatMessage: Identifiable, Equatable {
    enum Role { case user, model }

    let id = UUID()
    let role: Role
    var text: String
    /// The stats line shown under a finished model reply.
    var stats: String?
}
