import Foundation

/// Picks the next token: repetition penalty, then greedy argmax or temperature → top-k → top-p →
/// min-p → a draw from the seeded generator (the order Hugging Face's `generate` uses).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var random: SplitMix64

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        random = SplitMix64(seed: parameters.seed)
    }

    /// The next token for `logits` (one per vocabulary entry), given the tokens already in the context.
    public mutating func next(logits: [Float], context: [Int]) -> Int {
        var scores = logits
        Self.applyRepetitionPenalty(&scores, context: context, penalty: parameters.repetitionPenalty)
        if parameters.isGreedy { return Self.argmax(scores) }
        let candidates = Self.distribution(scores, temperature: parameters.temperature,
                                           topK: parameters.topK, topP: parameters.topP, minP: parameters.minP)
        var remaining = random.nextUnit()
        for candidate in candidates {
            remaining -= candidate.probability
            if remaining < 0 { return candidate.token }
        }
        return candidates.last?.token ?? Self.argmax(scores)  // rounding left a sliver
    }

    /// CTRL (Keskar et al. 2019): a seen token's positive logit is divided by the penalty, a negative one multiplied.
    static func applyRepetitionPenalty(_ logits: inout [Float], context: [Int], penalty: Float) {
        guard penalty != 1 else { return }
        for token in Set(context) where logits.indices.contains(token) {
            let value = logits[token]
            logits[token] = value > 0 ? value / penalty : value * penalty
        }
    }

    /// Index of the largest logit; the first on ties (as torch.argmax), NaN never wins.
    static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, value) in logits.enumerated() where value > bestValue {
            best = i
            bestValue = value
        }
        return best
    }

    /// The tokens that may be drawn, in id order, with probabilities renormalized to sum to 1.
    /// Drawing walks them in id order, so the result never depends on how ties were sorted.
    static func distribution(_ logits: [Float], temperature: Float, topK: Int, topP: Float,
                             minP: Float = 0) -> [(token: Int, probability: Double)] {
        // Plain loops: this runs once per token over the whole vocabulary.
        var scaled = [Double](repeating: -.infinity, count: logits.count)
        var kept: [Int] = []
        kept.reserveCapacity(logits.count)
        for (i, logit) in logits.enumerated() where logit > -.infinity {  // NaN and -inf are never drawn
            scaled[i] = Double(logit) / Double(temperature)
            kept.append(i)
        }
        guard !kept.isEmpty else { return [(argmax(logits), 1)] }
        if topK > 0, topK < kept.count { kept = highest(topK, of: kept, by: scaled).sorted() }

        var maxScore = -Double.infinity
        for i in kept where scaled[i] > maxScore { maxScore = scaled[i] }
        var weights = [Double](repeating: 0, count: kept.count)
        for (n, i) in kept.enumerated() { weights[n] = exp(scaled[i] - maxScore) }
        if topP < 1 {
            (kept, weights) = nucleus(kept, weights, mass: Double(topP))
        }
        if minP > 0 {
            (kept, weights) = aboveFloor(kept, weights, fraction: Double(minP))
        }
        let total = weights.reduce(0, +)
        return zip(kept, weights).map { ($0, $1 / total) }
    }

    /// The tokens whose weight is at least `fraction` of the largest weight, still in id order.
    private static func aboveFloor(_ tokens: [Int], _ weights: [Double], fraction: Double) -> ([Int], [Double]) {
        var largest = 0.0
        for weight in weights where weight > largest { largest = weight }
        let floor = fraction * largest
        let kept = weights.indices.filter { weights[$0] >= floor }
        return (kept.map { tokens[$0] }, kept.map { weights[$0] })
    }

    /// The `k` best candidates (ties: lower id), without sorting the whole vocabulary.
    private static func highest(_ k: Int, of candidates: [Int], by score: [Double]) -> [Int] {
        func better(_ a: Int, _ b: Int) -> Bool { score[a] != score[b] ? score[a] > score[b] : a < b }
        var best: [Int] = []  // best first
        best.reserveCapacity(k + 1)
        for candidate in candidates where best.count < k || better(candidate, best[best.count - 1]) {
            var low = 0
            var high = best.count
            while low < high {
                let mid = (low + high) / 2
                if better(best[mid], candidate) { low = mid + 1 } else { high = mid }
            }
            best.insert(candidate, at: low)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    /// The smallest set of most likely tokens holding `mass` of the probability (ties: lower id),
    /// returned in id order. Only tokens above a falling weight cutoff are sorted: the nucleus
    /// always lies among them once they hold enough mass.
    private static func nucleus(_ tokens: [Int], _ weights: [Double], mass: Double) -> ([Int], [Double]) {
        let total = weights.reduce(0, +)
        var cutoff = 1e-3
        var head: [Int] = []  // positions in `tokens`
        while true {
            head = weights.indices.filter { weights[$0] >= cutoff }
            if head.reduce(0, { $0 + weights[$1] }) >= mass * total || cutoff == 0 { break }
            cutoff = cutoff < 1e-12 ? 0 : cutoff / 64
        }
        head.sort { weights[$0] != weights[$1] ? weights[$0] > weights[$1] : tokens[$0] < tokens[$1] }
        var cumulative = 0.0
        var count = 0
        while count < head.count {
            cumulative += weights[head[count]] / total
            count += 1
            if cumulative >= mass { break }
        }
        let chosen = head[..<count].sorted()
        return (chosen.map { tokens[$0] }, chosen.map { weights[$0] })
    }
}
