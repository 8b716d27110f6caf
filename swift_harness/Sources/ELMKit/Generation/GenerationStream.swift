import Foundation

/// What a streaming generation reports: each token as it comes, then the result.
public enum GenerationEvent: Sendable {
    case token(GeneratedToken)
    case finished(GenerationResult)
}

extension Generator {
    /// `generate` on the generator's queue, as an async sequence (for SwiftUI). Cancelling the
    /// consuming task (or dropping the stream) stops generation after the current model call.
    ///
    /// Generations started this way run one after another: a new stream's generation starts only
    /// once every earlier one has returned, so a stopped generation's call in flight never
    /// overlaps the next one's `reset` and `prefill`. The sequence itself ends as soon as its
    /// consumer stops; `waitUntilIdle()` waits for the model.
    public func stream(promptTokens: [Int], options: GenerationOptions, loadSeconds: Double = 0)
        -> AsyncThrowingStream<GenerationEvent, Error>
    {
        AsyncThrowingStream { continuation in
            let stopped = StopFlag()
            continuation.onTermination = { _ in stopped.set() }
            enqueue { [self] in
                // Stopped while waiting for the generation before it: never touch the model.
                guard !stopped.isSet else {
                    continuation.finish(throwing: CancellationError())
                    return
                }
                do {
                    let result = try self.generate(promptTokens: promptTokens, options: options, loadSeconds: loadSeconds) { token in
                        continuation.yield(.token(token))
                        return !stopped.isSet
                    }
                    continuation.yield(.finished(result))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }
}

/// Set once the consumer of a stream is gone (cancelled, finished or dropped).
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }

    func set() { lock.withLock { value = true } }
}
