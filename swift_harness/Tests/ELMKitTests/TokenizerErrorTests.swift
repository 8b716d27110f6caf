import Foundation
import Testing
@testable import ELMKit

/// Broken tokenizer files must fail with a message that says what is wrong, not a decoder dump.
@Suite struct TokenizerErrorTests {
    /// A minimal LLaMA-style tokenizer.json; `edit` changes it before serializing.
    static func tokenizerJSON(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        var root: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 0, "content": "<unk>", "special": true, "normalized": false],
                             ["id": 1, "content": "<s>", "special": true, "normalized": false],
                             ["id": 2, "content": "</s>", "special": true, "normalized": false]],
            "normalizer": ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "▁"],
                                                               ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]],
            "pre_tokenizer": NSNull(),
            "post_processor": ["type": "TemplateProcessing",
                               "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                               "special_tokens": ["<s>": ["id": "<s>", "ids": [1], "tokens": ["<s>"]]]],
            "decoder": ["type": "Sequence", "decoders": [["type": "Replace", "pattern": ["String": "▁"], "content": " "],
                                                         ["type": "ByteFallback"], ["type": "Fuse"],
                                                         ["type": "Strip", "content": " ", "start": 1, "stop": 0]]],
            "model": ["type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
                      "vocab": ["<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5, "▁a": 6, "ab": 7, "▁ab": 8],
                      "merges": ["▁ a", "a b", "▁a b"]],
        ]
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    static func model(_ root: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var model = root["model"] as! [String: Any]
        edit(&model)
        root["model"] = model
    }

    func message(_ data: Data) -> String {
        do {
            _ = try Tokenizer(data: data, source: "tokenizer.json")
            return "no error"
        } catch {
            #expect(error is TokenizerError, "\(type(of: error)) is not a TokenizerError")
            return "\(error)"
        }
    }

    @Test func minimalTokenizerWorksWithMergesAsStringsOrPairs() throws {
        let strings = try Tokenizer(data: Self.tokenizerJSON())
        let pairs = try Tokenizer(data: Self.tokenizerJSON { Self.model(&$0) { $0["merges"] = [["▁", "a"], ["a", "b"], ["▁a", "b"]] } })
        for tokenizer in [strings, pairs] {
            #expect(tokenizer.encode("ab") == [1, 8])
            #expect(tokenizer.encode("ab ab", addBOS: false) == [8, 8])
            #expect(tokenizer.encode("bab", addBOS: false) == [3, 5, 7])  // "▁b" is unknown, no merge
            #expect(tokenizer.decode([1, 8, 8]) == "ab ab")
        }
    }

    @Test func missingFile() {
        let url = URL(fileURLWithPath: "/nonexistent/model/tokenizer.json")
        #expect { try Tokenizer(contentsOf: url) } throws: { error in
            "\(error)".contains("/nonexistent/model/tokenizer.json") && "\(error)".contains("file not found")
        }
    }

    @Test func invalidJSONSaysWhere() {
        let text = message(Data("{\n  \"model\": {\"vocab\": {\"a\": 1,}\n}".utf8))
        #expect(text.contains("tokenizer.json: not valid JSON"), "\(text)")
        #expect(text.contains("line 2"), "\(text)")
        #expect(message(Data()).contains("empty"))
    }

    @Test func truncatedFile() throws {
        let data = try Self.tokenizerJSON()
        let text = message(data.prefix(data.count / 2))
        #expect(text.contains("not valid JSON") && text.contains("unexpected end"), "\(text)")
    }

    @Test func missingFieldsAreNamed() throws {
        #expect(message(try Self.tokenizerJSON { $0["model"] = nil }).contains("field 'model' is missing"))
        #expect(message(try Self.tokenizerJSON { Self.model(&$0) { $0["vocab"] = nil } }).contains("field 'model.vocab' is missing"))
        #expect(message(try Self.tokenizerJSON { Self.model(&$0) { $0["merges"] = nil } }).contains("field 'model.merges' is missing"))
    }

    @Test func wrongTypesAreNamed() throws {
        let text = message(try Self.tokenizerJSON { Self.model(&$0) { $0["vocab"] = [1, 2] } })
        #expect(text.contains("'model.vocab' should be an object but is an array"), "\(text)")
        let idText = message(try Self.tokenizerJSON { Self.model(&$0) { $0["vocab"] = ["a": "one"] } })
        #expect(idText.contains("should be a token id"), "\(idText)")
    }

    @Test func badMergesAreExplained() throws {
        let unknown = message(try Self.tokenizerJSON { Self.model(&$0) { $0["merges"] = ["a z"] } })
        #expect(unknown.contains("merge #1") && unknown.contains("'z'") && unknown.contains("not in the vocabulary"), "\(unknown)")
        let malformed = message(try Self.tokenizerJSON { Self.model(&$0) { $0["merges"] = ["▁ a", "abc"] } })
        #expect(malformed.contains("merge #2") && malformed.contains("not two tokens"), "\(malformed)")
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let normalizer = message(try Self.tokenizerJSON { $0["normalizer"] = ["type": "NFKC"] })
        #expect(normalizer.contains("normalizer type 'NFKC'") && normalizer.contains("not supported"), "\(normalizer)")
        let pre = message(try Self.tokenizerJSON { $0["pre_tokenizer"] = ["type": "ByteLevel"] })
        #expect(pre.contains("pre_tokenizer type 'ByteLevel'"), "\(pre)")
        let model = message(try Self.tokenizerJSON { Self.model(&$0) { $0["type"] = "WordPiece" } })
        #expect(model.contains("model type 'WordPiece'"), "\(model)")
        let decoder = message(try Self.tokenizerJSON { $0["decoder"] = ["type": "WordPiece"] })
        #expect(decoder.contains("decoder type 'WordPiece'"), "\(decoder)")
    }

    @Test func optionalComponentsMayBeAbsent() throws {
        let tokenizer = try Tokenizer(data: Self.tokenizerJSON {
            $0["normalizer"] = NSNull()
            $0["post_processor"] = nil
            $0["decoder"] = NSNull()
        })
        #expect(tokenizer.encode("ab") == [7])  // no "▁" prepended, no BOS added
        #expect(tokenizer.decode([7, 4]) == "ab a")  // no decoder: tokens joined by spaces, as HF
    }
}
