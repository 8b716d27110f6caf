/// How the next token is chosen from the logits.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 (or less) means greedy: always the most likely token.
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 turns it off.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 turns it off.
    public var topP: Float
    /// After top-p, drop tokens less likely than min-p times the most likely one; 0 turns it off.
    public var minP: Float
    /// CTRL-style penalty on tokens already in the context; 1 turns it off. OpenELM's model card uses 1.2.
    public var repetitionPenalty: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1,
                seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    public static let greedy = SamplingParameters()

    public var isGreedy: Bool { temperature <= 0 }

    /// A message for the first out-of-range value, or nil when all are usable.
    public var problem: String? {
        if !temperature.isFinite || temperature < 0 { return "temperature must be 0 (greedy) or positive, got \(temperature)" }
        if topK < 0 { return "top-k must be 0 (off) or positive, got \(topK)" }
        if !(topP > 0 && topP <= 1) { return "top-p must be in (0, 1], got \(topP)" }
        if !(minP >= 0 && minP < 1) { return "min-p must be in [0, 1) (0 = off), got \(minP)" }
        if !(repetitionPenalty.isFinite && repetitionPenalty > 0) { return "repetition penalty must be positive (1 = off), got \(repetitionPenalty)" }
        return nil
    }
}
