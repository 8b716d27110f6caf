import ELMKit

/// elm-run's --speculate: how tokens are guessed for the model's verify function.
enum Speculation: String, CaseIterable, Equatable {
    /// One decode call per token.
    case none
    /// Prompt lookup: the continuation of the last tokens' earlier occurrence (free).
    case lookup
    /// A draft export's greedy continuation (--draft DIR).
    case draft

    /// What runs for an export: the asked-for mode, else draft with --draft, lookup when the export
    /// has a verify function, none otherwise. Asking to speculate without verify is an error.
    static func resolve(_ asked: Speculation?, draftFolder: String?, exportHasVerify: Bool) throws -> Speculation {
        let mode = asked ?? (draftFolder != nil ? .draft : exportHasVerify ? .lookup : .none)
        if mode != .none, !exportHasVerify {
            throw UsageError("this export has no verify function, so it cannot speculate; use --speculate none, or re-export it with a verify function")
        }
        return mode
    }

    /// Why `draft` cannot draft for `target`, nil when it can: both must share one vocabulary, or
    /// the draft's token ids would mean other tokens to the target.
    static func vocabularyProblem(target: ExportManifest, draft: ExportManifest,
                                  targetTokenizer: Tokenizer?, draftTokenizer: Tokenizer?) -> String? {
        let differs = "the draft model's vocabulary differs from the target's"
        guard draft.vocabSize == target.vocabSize else {
            return "\(differs) (\(draft.vocabSize) tokens, the target has \(target.vocabSize)); use a draft exported with the same tokenizer"
        }
        guard let targetTokenizer, let draftTokenizer else { return nil }
        let sizes = (targetTokenizer.vocabularySize, draftTokenizer.vocabularySize)
        if let id = (0..<max(sizes.0, sizes.1)).first(where: { targetTokenizer.tokenString(for: $0) != draftTokenizer.tokenString(for: $0) }) {
            return "\(differs) (token \(id) is '\(draftTokenizer.tokenString(for: id) ?? "none")' there, '\(targetTokenizer.tokenString(for: id) ?? "none")' here); use a draft exported with the same tokenizer"
        }
        return nil
    }
}
