@testable import ELMKit

/// The golden files Python writes for issue 19 (sampling, chat template, speculative decoding).

/// A logit as Python writes it: a number, or "-inf" / "inf" / "nan" (JSON has no infinities).
/// Numbers are read as Double and then rounded to Float, as numpy's float32 conversion does.
struct GoldenLogit: Decodable {
    let value: Float

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            value = Float(number)
            return
        }
        switch try container.decode(String.self) {
        case "-inf": value = -.infinity
        case "inf": value = .infinity
        case "nan": value = .nan
        case let other: throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a logit: \(other)")
        }
    }
}

struct SamplingGolden: Decodable {
    struct Parameters: Decodable {
        let temperature: Double
        let top_k: Int
        let top_p: Double
        let min_p: Double
        let repetition_penalty: Double
        let seed: UInt64

        var sampling: SamplingParameters {
            SamplingParameters(temperature: Float(temperature), topK: top_k, topP: Float(top_p), minP: Float(min_p),
                               repetitionPenalty: Float(repetition_penalty), seed: seed)
        }
    }

    struct Case: Decodable {
        let name: String
        let parameters: Parameters
        let context: [Int]
        let steps: [[GoldenLogit]]
        let tokens: [Int]
    }

    let cases: [Case]
}

struct ChatTemplateGolden: Decodable {
    struct Message: Decodable {
        let role: String
        let content: String
    }

    struct Case: Decodable {
        let messages: [Message]
        let add_generation_prompt: Bool
        let text: String
    }

    let template: String
    let bos_token: String
    let eos_token: String
    let cases: [Case]
}

struct SpeculativeGolden: Decodable {
    struct Calls: Decodable, Equatable {
        let decode: Int
        let verify: Int
        let accepted: Int
        let proposed: Int
        /// The draft model's calls (0 for prompt lookup).
        let draft_prefill: Int
        let draft_decode: Int
    }

    struct Case: Decodable {
        let name: String
        let prompt: [Int]
        let max_new_tokens: Int
        let drafter: String
        /// The sampling's repetition penalty, which the draft model drafts under too.
        let repetition_penalty: Float
        let plain_tokens: [Int]
        let speculative_tokens: [Int]
        let calls: Calls
    }

    let vocab_size: Int
    let context_length: Int
    let prefill_length: Int
    let verify_length: Int
    let prefill_gives_logits: Bool
    let cases: [Case]
    /// Context (comma-joined ids, up to the token the row follows) → the row's top entries [id, logit].
    let target_rows: [String: [[Double]]]
    let draft_rows: [String: [[Double]]]
}
