import Foundation

/// Why a tokenizer.json could not be used. Every message names the file and says what to fix.
public struct TokenizerError: Error, CustomStringConvertible, LocalizedError {
    public let source: String
    public let reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    public var description: String { "\(source): \(reason)" }
    public var errorDescription: String? { description }

    static func unsupported(_ source: String, _ what: String) -> TokenizerError {
        TokenizerError(
            source: source,
            reason: "\(what) is not supported; ELMKit reads LLaMA-style tokenizers (BPE with byte fallback, "
                + "Prepend/Replace normalizers, no pre-tokenizer, TemplateProcessing, "
                + "Replace/ByteFallback/Fuse/Strip decoders)"
        )
    }
}
