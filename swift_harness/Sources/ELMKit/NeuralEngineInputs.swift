import Foundation

/// What the caller computes for each body call of an `ane` export (export.json's `graph.target`):
/// the rotary rows and the causal mask, exactly as elm-export's `exporter.graph.host_inputs` does
/// (`rotary_input`, `mask_input`), so the float16 values match bit for bit. Pure Swift, no Apple
/// frameworks: the Linux tests check it against values Python wrote.
///
/// Values are float16 bit patterns (`UInt16`), row-major: Swift's `Float16` does not exist on
/// Intel Macs, and Core ML / Core AI take the bits as they are.
public struct NeuralEngineInputs: Sendable, Equatable {
    /// What elm-export writes as `graph.mask_value`: a float16 that zeroes a softmax weight (the
    /// Neural Engine mishandles -inf).
    public static let defaultMaskValue: Float = -40000

    public let headDim: Int
    public let ropeFreqConstant: Double
    public let contextLength: Int
    public let maskValue: Float
    /// f_i = 1 / base^(2i / head_dim) for i < head_dim / 2, in Float32 as torch computes it.
    public let inverseFrequencies: [Float]

    public init(headDim: Int, ropeFreqConstant: Double, contextLength: Int, maskValue: Float = Self.defaultMaskValue) {
        precondition(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even")
        self.headDim = headDim
        self.ropeFreqConstant = ropeFreqConstant
        self.contextLength = contextLength
        self.maskValue = maskValue
        // torch: inv_freq = 1.0 / (base ** (arange(0, head_dim, 2, float32) / head_dim)), all float32.
        let base = Float(ropeFreqConstant)
        inverseFrequencies = stride(from: 0, to: headDim, by: 2).map { i in
            let exponent = Float(i) / Float(headDim)
            let power = Float(Foundation.pow(Double(base), Double(exponent)))  // correctly rounded powf
            return 1 / power
        }
    }

    /// The inputs of `manifest`'s `ane` export; nil for a `gpu` export (which takes none of them).
    public init?(manifest: ExportManifest) {
        guard manifest.graph.target == .ane, let headDim = manifest.headDim, let base = manifest.ropeFreqConstant else { return nil }
        self.init(headDim: headDim, ropeFreqConstant: base, contextLength: manifest.contextLength,
                  maskValue: Float(manifest.graph.maskValue))
    }

    /// Values per rotary row: cos (head_dim), then signed sin (head_dim).
    public var rotaryWidth: Int { 2 * headDim }

    /// float16 [1, tokens, 2 * head_dim]: for the token at q = position + t, cos(q f) repeated
    /// twice, then sin(q f) with the first half negated and the second half as is.
    public func rotary(position: Int, tokens: Int) -> [UInt16] {
        let half = headDim / 2
        var out = [UInt16](repeating: 0, count: tokens * rotaryWidth)
        for t in 0..<tokens {
            let q = Float(position + t)
            let row = t * rotaryWidth
            for i in 0..<half {
                let angle = Double(q * inverseFrequencies[i])  // the float32 product, as torch
                let cosine = Self.halfBits(Float(Foundation.cos(angle)))
                let sine = Float(Foundation.sin(angle))
                out[row + i] = cosine
                out[row + half + i] = cosine
                out[row + headDim + i] = Self.halfBits(-sine)
                out[row + headDim + half + i] = Self.halfBits(sine)
            }
        }
        return out
    }

    /// float16 [1, tokens, context_length]: row t is 0 at key slots s <= position + t, else the mask value.
    public func mask(position: Int, tokens: Int) -> [UInt16] {
        let hidden = Self.halfBits(maskValue)
        var out = [UInt16](repeating: hidden, count: tokens * contextLength)
        for t in 0..<tokens {
            let visible = min(max(position + t + 1, 0), contextLength)
            for s in 0..<visible { out[t * contextLength + s] = 0 }
        }
        return out
    }

    /// Everything one body call (every chunk of it) takes besides its hidden state.
    public func call(_ function: ModelFunction, position: Int, tokens: Int) -> NeuralEngineCall {
        NeuralEngineCall(function: function, position: position, tokens: tokens,
                         rotary: rotary(position: position, tokens: tokens), rotaryWidth: rotaryWidth,
                         mask: mask(position: position, tokens: tokens), contextLength: contextLength)
    }

    /// The calls that feed a prompt of `promptLength` tokens to an `ane` export: prefill (no
    /// logits) of every token but the last, then decode of the last, whose logits are the next token's.
    public static func promptPlan(promptLength: Int, prefillLength: Int, contextLength: Int) -> [PromptCall] {
        PromptPlan.calls(promptLength: promptLength, prefillLength: prefillLength, contextLength: contextLength,
                         prefillGivesLogits: false)
    }

    /// IEEE 754 single → half bits, rounding to nearest even (what torch's `.to(float16)` does),
    /// subnormals, infinities and NaN included.
    public static func halfBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x0200 : 0) }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Subnormal (or zero): the value in units of 2^-24, rounded. May round up to the smallest normal.
            guard exponent != 0 else { return sign }  // float subnormals are far below half's range
            let shift = 14 - halfExponent
            guard shift <= 24 else { return sign }
            return sign | UInt16(roundedShift(mantissa | 0x80_0000, by: shift))
        }
        // A mantissa rounding up carries into the exponent, up to infinity, as it should.
        return sign | UInt16((UInt32(halfExponent) << 10) + roundedShift(mantissa, by: 13))
    }

    private static func roundedShift(_ value: UInt32, by shift: Int) -> UInt32 {
        let kept = value >> UInt32(shift)
        let rest = value & ((1 << UInt32(shift)) - 1)
        let halfway = UInt32(1) << UInt32(shift - 1)
        return rest > halfway || (rest == halfway && kept & 1 == 1) ? kept + 1 : kept
    }
}

/// One body call of an `ane` export, the same for every chunk of it: the function, the position
/// of its first token and the rotary rows and mask the caller computed (float16 bits, row-major).
public struct NeuralEngineCall: Sendable, Equatable {
    public let function: ModelFunction
    public let position: Int
    /// T: prefill_length for prefill, 1 for decode, verify_length for verify.
    public let tokens: Int
    /// [1, T, rotaryWidth]
    public let rotary: [UInt16]
    public let rotaryWidth: Int
    /// [1, T, contextLength]
    public let mask: [UInt16]
    public let contextLength: Int

    public var rotaryShape: [Int] { [1, tokens, rotaryWidth] }
    public var maskShape: [Int] { [1, tokens, contextLength] }
    /// The embed function the first chunk runs first: "embed_prefill", "embed_decode" or "embed_verify".
    public var embedFunction: String { ChunkSpec.embedFunctionName(function) }
}

/// One model call that feeds the prompt.
public enum PromptCall: Sendable, Equatable {
    /// `prefill` of the prompt's tokens at these indices, at position = the range's start (padded
    /// to prefill_length by the model).
    case prefill(Range<Int>)
    /// `decode` of the prompt's token at this index, at position = the index.
    case decode(Int)

    public var position: Int {
        switch self {
        case .prefill(let range): return range.lowerBound
        case .decode(let position): return position
        }
    }
}

/// How a prompt is fed, for either graph target (see `Generator`): the logits for the first new
/// token come from the plan's last call.
public enum PromptPlan {
    /// - `prefillGivesLogits` true (gpu): every prompt token goes through prefill in chunks of
    ///   `prefillLength` at position = chunk start; the last real row of the last chunk gives the logits.
    /// - false (ane, "prompt_opt"): every token but the last goes through prefill that way; the
    ///   last token then goes through decode at its index, which gives the logits. A one-token
    ///   prompt has no prefill call.
    ///
    /// Either way a padded chunk must fit in the cache: from the first chunk that would run past
    /// `contextLength`, the remaining tokens go through decode one by one.
    public static func calls(promptLength: Int, prefillLength: Int, contextLength: Int,
                             prefillGivesLogits: Bool) -> [PromptCall] {
        guard promptLength > 0, prefillLength > 0 else { return [] }
        let prefilled = prefillGivesLogits ? promptLength : promptLength - 1
        var calls: [PromptCall] = []
        var start = 0
        while start < prefilled {
            guard start + prefillLength <= contextLength else {
                calls += (start..<prefilled).map(PromptCall.decode)
                start = prefilled
                break
            }
            calls.append(.prefill(start..<min(start + prefillLength, prefilled)))
            start += prefillLength
        }
        if !prefillGivesLogits { calls.append(.decode(promptLength - 1)) }
        return calls
    }
}
