/// What a streaming generation reports: each token as it comes, then the result.
public enum GenerationEvent: Sendable {
    case token(GeneratedToken)
    case finished(GenerationResult)
}

extension Generator {
    /// `generate` on a background task, as an async sequence (for SwiftUI). Cancelling the
    /// consuming task (or dropping the stream) stops generation after the current token.
    public func stream(promptTokens: [Int], options: GenerationOptions, loadSeconds: Double = 0)
        -> AsyncThrowingStream<GenerationEvent, Error>
    {
        AsyncThrowingStream { continuation in
            let task = Task.detached { [self] in
                do {
                    let result = try self.generate(promptTokens: promptTokens, options: options, loadSeconds: loadSeconds) { token in
                        continuation.yield(.token(token))
                        return !Task.isCancelled
                    }
                    continuation.yield(.finished(result))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
