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
    /// Decode calls made after the prompt (one per generated token after the first when not
    /// speculating, unless stopped before feeding it).
    public var decodeSteps: Int
    /// Time in model calls and sampling after the first token.
    public var decodeSeconds: Double
    /// Every call made to the model, prompt included, by kind.
    public var calls = ModelCallCounts()
    /// The drafter's name when generation speculated, else nil.
    public var drafter: String?
    /// Draft tokens sent to verify calls, and how many of them the model's own choice matched.
    public var draftsProposed = 0
    public var draftsAccepted = 0

    /// Generated tokens per second after the first (which the prompt's call gives).
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0 }
    /// Share of proposed drafts accepted (0 when none were proposed).
    public var acceptanceRate: Double { draftsProposed > 0 ? Double(draftsAccepted) / Double(draftsProposed) : 0 }
    /// Model calls (decode and verify, the prompt's excluded) per generated token: 1 without
    /// speculation, lower the more drafts are accepted.
    public var modelCallsPerToken: Double {
        generatedTokens > 0 ? Double(decodeSteps + calls.verify) / Double(generatedTokens) : 0
    }

    public var description: String {
        var line = String(format: "load %.2f s | prompt %d tokens, prefill %.1f tok/s | first token %.3f s | %d tokens, decode %.1f tok/s",
                          loadSeconds, promptTokens, prefillTokensPerSecond, timeToFirstTokenSeconds, generatedTokens, decodeTokensPerSecond)
        if let drafter {
            line += " | \(drafter): " + String(format: "%.0f%% of %d drafts accepted, %.2f model calls/token",
                                                  100 * acceptanceRate, draftsProposed, modelCallsPerToken)
        }
        return line
    }
}

/// Model calls of one generation by kind. `draft` counts the drafter's calls to its own model.
public struct ModelCallCounts: Sendable, Equatable {
    public var prefill = 0
    public var decode = 0
    public var verify = 0
    public var draft = 0

    public init(prefill: Int = 0, decode: Int = 0, verify: Int = 0, draft: Int = 0) {
        self.prefill = prefill
        self.decode = decode
        self.verify = verify
        self.draft = draft
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
