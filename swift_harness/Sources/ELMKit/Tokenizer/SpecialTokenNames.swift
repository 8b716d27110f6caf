import Foundation

/// The BOS/EOS token names from a tokenizer_config.json ("bos_token": "<s>" or {"content": "<s>", ...}).
struct SpecialTokenNames {
    var bos: String?
    var eos: String?

    init(configFile: URL) throws {
        let root = try JSONParser.parse(Array(try Data(contentsOf: configFile)))
        bos = Self.name(root["bos_token"])
        eos = Self.name(root["eos_token"])
    }

    private static func name(_ value: JSONValue?) -> String? {
        if let s = value?.stringValue { return s }
        return value?["content"]?.stringValue
    }
}
