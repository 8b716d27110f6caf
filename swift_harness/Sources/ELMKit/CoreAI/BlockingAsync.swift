import Foundation

/// Runs async work from synchronous code and waits for it. Core AI's `InferenceFunction.run` is
/// async while `LanguageModel` (and so `Generator`) is synchronous, like Core ML's predictions.
///
/// The waiting thread blocks, so call this off Swift's cooperative threads: `Generator.stream`
/// runs generations on its own dispatch queue for that reason. Blocking a cooperative thread
/// would tie up one of the few threads the async work itself needs.
enum BlockingAsync {
    static func run<Value>(_ operation: @escaping @Sendable () async throws -> Value) throws -> Value {
        let outcome = Outcome<Value>()
        let finished = DispatchSemaphore(value: 0)
        Task.detached(priority: Task.currentPriority) {
            do {
                outcome.result = .success(try await operation())
            } catch {
                outcome.result = .failure(error)
            }
            finished.signal()
        }
        finished.wait()
        return try outcome.result!.get()
    }

    /// Written by the task before it signals, read by the waiting thread after: the semaphore
    /// orders the two, so no lock is needed.
    private final class Outcome<Value>: @unchecked Sendable {
        var result: Result<Value, Error>?
    }
}
