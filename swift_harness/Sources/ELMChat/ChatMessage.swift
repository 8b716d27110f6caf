import Foundation

public struct ChatMessage: Identifiable, Equatable, Sendable {
    public enum Role: Sendable { case user, model }

    public let id: UUID
    public let role: Role
    public var text: String
    /// The stats line shown under a finished model reply ("Stopped" for one cut short, or the error).
    public var stats: String?

    public init(role: Role, text: String, stats: String? = nil, id: UUID = UUID()) {
        self.id = id
        self.role = role
        self.text = text
        self.stats = stats
    }
}
