import Foundation
import Testing
@testable import ELMKit

/// Every difference between ELMKit's tokenizer and the golden data Python `tokenizers` produced.
func tokenizerMismatches(_ tokenizer: Tokenizer, _ golden: TokenizerGolden) -> [String] {
    var failures: [String] = []
    func check(_ same: Bool, _ what: @autoclosure () -> String) { if !same { failures.append(what()) } }
    for c in golden.encode {
        let ids = tokenizer.encode(c.text)
        check(ids == c.ids, "encode(\"\(escaped(c.text))\") = \(ids), Python \(c.ids)")
        let bare = tokenizer.encode(c.text, addBOS: false)
        check(bare == c.ids_without_bos, "encode(\"\(escaped(c.text))\", addBOS: false) = \(bare), Python \(c.ids_without_bos)")
        let text = tokenizer.decode(c.ids)
        check(sameScalars(text, c.decoded), "decode(\(c.ids)) = \"\(escaped(text))\", Python \"\(escaped(c.decoded))\"")
        let withSpecial = tokenizer.decode(c.ids, skipSpecialTokens: false)
        check(sameScalars(withSpecial, c.decoded_with_special),
              "decode(\(c.ids), skipSpecialTokens: false) = \"\(escaped(withSpecial))\", Python \"\(escaped(c.decoded_with_special))\"")
    }
    // Arbitrary ids: broken byte runs (one U+FFFD per byte, as HF), unknown ids (dropped).
    for c in golden.decode {
        let text = tokenizer.decode(c.ids)
        check(sameScalars(text, c.text), "decode(\(c.ids)) = \"\(escaped(text))\", Python \"\(escaped(c.text))\"")
        let withSpecial = tokenizer.decode(c.ids, skipSpecialTokens: false)
        check(sameScalars(withSpecial, c.text_with_special),
              "decode(\(c.ids), skipSpecialTokens: false) = \"\(escaped(withSpecial))\", Python \"\(escaped(c.text_with_special))\"")
    }
    return failures
}

/// ELMKit's tokenizer against Python `tokenizers` on the embedded tiny model's tokenizer.json.
@Suite struct TokenizerParityTests {
    let tokenizer: Tokenizer
    let golden: TokenizerGolden

    init() throws {
        tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
        golden = try Fixtures.decode(TokenizerGolden.self, from: "tokenizer_golden.json")
    }

    @Test func goldenFileHasTheRequiredCoverage() {
        #expect(golden.encode.count >= 200)
        #expect(golden.encode.contains { $0.text.isEmpty })
        #expect(golden.encode.contains { $0.text.unicodeScalars.contains("\u{200D}") })  // ZWJ emoji
        let byteTokens = Set(3...258)  // <0x00>...<0xFF> in a LLaMA-style vocabulary
        #expect(golden.encode.contains { $0.ids.contains(where: byteTokens.contains) }, "no byte-fallback case")
    }

    @Test func specialTokenIdsComeFromTheFile() {
        #expect(tokenizer.bosTokenId == golden.bos_token_id)
        #expect(tokenizer.eosTokenId == golden.eos_token_id)
        #expect(tokenizer.vocabularySize == golden.vocab_size)
    }

    @Test func encodeAndDecodeMatchPython() {
        let failures = tokenizerMismatches(tokenizer, golden)
        let allMatch = failures.isEmpty  // (not the array itself: #expect would print all of it)
        #expect(allMatch, "\(failures.count) mismatches:\n\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test func streamingDeltasAddUpToTheDecodedText() {
        for c in golden.encode where c.ids_without_bos.count > 1 {
            var stream = IncrementalDecoder(tokenizer: tokenizer)
            var text = c.ids_without_bos.map { stream.append($0) }.joined()
            text += stream.finish()
            #expect(sameScalars(text, tokenizer.decode(c.ids_without_bos)), "stream of \"\(escaped(c.text))\"")
        }
    }

    @Test func encodesThousandsOfTokensQuickly() {
        let text = String(repeating: "The quick brown fox jumps over the lazy dog; naïve café 東京 🙂. ", count: 200)
        let start = ContinuousClock.now
        let ids = tokenizer.encode(text)
        let elapsed = ContinuousClock.now - start
        #expect(ids.count > 3000)
        #expect(elapsed < .seconds(5), "encoding \(ids.count) tokens took \(elapsed)")
        #expect(sameScalars(tokenizer.decode(ids), text))
    }
}

/// Parity against any other tokenizer (e.g. LLaMA-2's real one) and a golden file in the same
/// format: set ELMKIT_TOKENIZER=/path/tokenizer.json and ELMKIT_TOKENIZER_GOLDEN=/path/golden.json.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["ELMKIT_TOKENIZER_GOLDEN"] != nil))
struct ExternalTokenizerParityTests {
    @Test func encodeAndDecodeMatchPython() throws {
        let environment = ProcessInfo.processInfo.environment
        let tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: try #require(environment["ELMKIT_TOKENIZER"])))
        let golden = try JSONDecoder().decode(
            TokenizerGolden.self, from: Data(contentsOf: URL(fileURLWithPath: try #require(environment["ELMKIT_TOKENIZER_GOLDEN"]))))
        let failures = tokenizerMismatches(tokenizer, golden)
        let allMatch = failures.isEmpty
        #expect(allMatch, "\(failures.count) of \(golden.encode.count + golden.decode.count) cases differ:\n\(failures.prefix(10).joined(separator: "\n"))")
    }
}
