import Foundation

/// Timings of one generation: what a user compares across devices and compute units.
public struct GenerationStats: Sendable, CustomStringConvertible {
    /// Model load (and compile) time, measured by the caller.
    public var loadSeconds: Double
    public var promptTokens: Int
    /// Time in prefill calls.
    public var prefillSeconds: Double
    /// From the start of generation until the first new token was chosen.
    public var timeToFirstTokenSeconds: Double
    public var generatedTokens: Int
    /// Decode calls made (one per generated token after the first, unless stopped before feeding it).
    public var decodeSteps: Int
    /// Time in decode calls and sampling after the first token.
    public var decodeSeconds: Double

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(decodeSteps) / decodeSeconds : 0 }

    public var description: String {
        String(format: "load %.2f s | prompt %d tokens, prefill %.1f tok/s | first token %.3f s | %d tokens, decode %.1f tok/s",
               loadSeconds, promptTokens, prefillTokensPerSecond, timeToFirstTokenSeconds, generatedTokens, decodeTokensPerSecond)
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
