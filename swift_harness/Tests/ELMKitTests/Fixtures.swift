import Foundation

/// The fixture files written by tests/test_swift_golden.py (Python `tokenizers` + the reference model).
enum Fixtures {
    static func url(_ name: String) -> URL {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("the Fixtures resource folder is missing from the test bundle")
        }
        return folder.appendingPathComponent(name)
    }

    static func decode<T: Decodable>(_ type: T.Type, from name: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }

    /// A fresh temporary folder for files a test writes.
    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ELMKitTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }
}

struct TokenizerGolden: Decodable {
    struct EncodeCase: Decodable {
        let text: String
        let ids: [Int]
        let ids_without_bos: [Int]
        let decoded: String
        let decoded_with_special: String
    }

    struct DecodeCase: Decodable {
        let ids: [Int]
        let text: String
        let text_with_special: String
    }

    let bos_token_id: Int
    let eos_token_id: Int
    let vocab_size: Int
    let encode: [EncodeCase]
    let decode: [DecodeCase]
}

struct ReplayGolden: Decodable {
    struct Row: Decodable {
        let ids: [Int]
        let values: [Float]
    }

    struct Call: Decodable {
        let function: String
        let position: Int
        let tokens: [Int]
        let rows: [Row]
    }

    let prompt: String
    let prompt_ids: [Int]
    let context_length: Int
    let prefill_length: Int
    let vocab_size: Int
    let eos_token_id: Int
    let max_new_tokens: Int
    let calls: [Call]
    let expected_tokens: [Int]
    let expected_text: String
}

/// Strings compared scalar by scalar: Swift's `==` treats "é" and "e\u{301}" as equal, HF does not.
func sameScalars(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.elementsEqual(b.unicodeScalars)
}

/// "e\u{301}" → "e\\u{301}": mismatches printed readably.
func escaped(_ s: String) -> String {
    s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
}
