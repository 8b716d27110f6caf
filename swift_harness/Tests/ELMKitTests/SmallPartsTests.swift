import Foundation
import Testing
@testable import ELMKit

@Suite struct HalfFloatTests {
    @Test func convertsLikeNumPy() {
        // Expected values from numpy's float16 → float conversion.
        let cases: [(UInt16, Float)] = [
            (0x3C00, 1), (0xC000, -2), (0x7BFF, 65504), (0x0001, 5.960464477539063e-08),
            (0x03FF, 6.097555160522461e-05), (0x0400, 6.103515625e-05), (0x3555, 0.333251953125),
            (0x7C00, .infinity), (0xFC00, -.infinity), (0x0000, 0),
        ]
        for (bits, value) in cases { #expect(HalfFloat.float(fromBits: bits) == value, "0x\(String(bits, radix: 16))") }
        #expect(HalfFloat.float(fromBits: 0x8000).sign == .minus)
        #expect(HalfFloat.float(fromBits: 0x7E00).isNaN)
    }
}

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func keepsExactScalarsAndKeyOrder() throws {
        // "é" precomposed and decomposed must stay two distinct keys.
        let value = try parse(#"{"\u00e9": 1, "e\u0301": 2, "z": 3, "a": [true, false, null, -1.5e2]}"#)
        guard case .object(let pairs) = value else { Issue.record("not an object"); return }
        #expect(pairs.map { Array($0.key.unicodeScalars) } == [["\u{E9}"], ["e", "\u{301}"], ["z"], ["a"]])
        #expect(value["e\u{301}"]?.intValue == 2 && value["\u{E9}"]?.intValue == 1)
        guard case .array(let items)? = value["a"], case .number(let n) = items[3] else { Issue.record("bad array"); return }
        #expect(n == -150)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"\\\/\b\f\n\r\t\u0000\ud83d\ude42""#).stringValue == "a\"\\/\u{8}\u{C}\n\r\t\u{0}🙂")
        #expect(try parse(#""\ud83d""#).stringValue == "\u{FFFD}")  // lone surrogate
    }

    @Test func reportsLineAndColumn() {
        #expect { try parse("{\n  \"a\": tru\n}") } throws: { "\($0)".contains("line 2, column 8") }
        #expect { try parse("[1,]") } throws: { "\($0)".contains("expected a value") }
        #expect { try parse("{} x") } throws: { "\($0)".contains("after the JSON value") }
        #expect { try parse("01") } throws: { "\($0)".contains("leading zero") }
        #expect { try parse(String(repeating: "[", count: 600)) } throws: { "\($0)".contains("nested deeper") }
    }
}

@Suite struct IncrementalDecoderTests {
    @Test func holdsBackIncompleteCharacters() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
        let ids = tokenizer.encode("x 🙂 y", addBOS: false)
        var stream = IncrementalDecoder(tokenizer: tokenizer)
        let deltas = ids.map { stream.append($0) }
        #expect(!deltas.contains { $0.unicodeScalars.contains("\u{FFFD}") })  // never a half emoji
        #expect(sameScalars(deltas.joined() + stream.finish(), "x 🙂 y"))
    }

    @Test func flushesBrokenBytesAtTheEnd() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.url("tokenizer.json"))
        let brokenByte = try #require(tokenizer.encode("\u{1F642}", addBOS: false).last)  // a continuation byte
        var stream = IncrementalDecoder(tokenizer: tokenizer)
        #expect(stream.append(brokenByte) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }
}
