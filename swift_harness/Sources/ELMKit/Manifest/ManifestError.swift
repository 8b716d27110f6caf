import Foundation

/// Why an export.json could not be used; the message names the file and what to do.
public struct ManifestError: Error, CustomStringConvertible, LocalizedError {
    public let source: String
    public let reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    public var description: String { "\(source): \(reason)" }
    public var errorDescription: String? { description }
}
