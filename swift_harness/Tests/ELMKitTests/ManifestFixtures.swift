import Foundation
import Testing
@testable import ELMKit

/// export.json files trimmed by hand from real exports of the embedded openelm-tiny model (int4):
/// verification, size and timing fields dropped, everything ELMKit reads kept as written.
enum ManifestFixtures {
    /// `--max-chunk-bytes 800000`: three packages, layers [0, 2), [2, 5), [5, 6); top-level package fields null.
    static let split = """
        {
          "format": "elm-export/1",
          "name": "OpenELM-tiny-int4",
          "package": null,
          "chunks": [
            {
              "package": "OpenELM-tiny-int4-1of3.mlpackage",
              "layers": [0, 2],
              "input": "input_ids",
              "output": "hidden_out",
              "functions": {
                "prefill": {
                  "inputs": [
                    {"name": "input_ids", "shape": [1, 64], "dtype": "int32"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "hidden_out", "shape": [1, 64, 192], "dtype": "float16"}]
                },
                "decode": {
                  "inputs": [
                    {"name": "input_ids", "shape": [1, 1], "dtype": "int32"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "hidden_out", "shape": [1, 1, 192], "dtype": "float16"}]
                }
              },
              "states": [
                {"name": "key_cache", "shape": [1, 32, 512, 16], "dtype": "float16"},
                {"name": "value_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}
              ],
              "package_bytes": 861120,
              "weights_sha256": "9ebda1d78f85785c3f0c9d23e54194174690a501424c6278e1da3e7d05fc87a0"
            },
            {
              "package": "OpenELM-tiny-int4-2of3.mlpackage",
              "layers": [2, 5],
              "input": "hidden_in",
              "output": "hidden_out",
              "functions": {
                "prefill": {
                  "inputs": [
                    {"name": "hidden_in", "shape": [1, 64, 192], "dtype": "float16"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "hidden_out", "shape": [1, 64, 192], "dtype": "float16"}]
                },
                "decode": {
                  "inputs": [
                    {"name": "hidden_in", "shape": [1, 1, 192], "dtype": "float16"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "hidden_out", "shape": [1, 1, 192], "dtype": "float16"}]
                }
              },
              "states": [
                {"name": "key_cache", "shape": [1, 32, 512, 16], "dtype": "float16"},
                {"name": "value_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}
              ],
              "package_bytes": 966043,
              "weights_sha256": "bddbde51334cc01d6dfca3dfc9807ce2e399479e1dbb9c3c5b68933b8c091a46"
            },
            {
              "package": "OpenELM-tiny-int4-3of3.mlpackage",
              "layers": [5, 6],
              "input": "hidden_in",
              "output": "logits",
              "functions": {
                "prefill": {
                  "inputs": [
                    {"name": "hidden_in", "shape": [1, 64, 192], "dtype": "float16"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "logits", "shape": [1, 64, 1, 4096], "dtype": "float16"}]
                },
                "decode": {
                  "inputs": [
                    {"name": "hidden_in", "shape": [1, 1, 192], "dtype": "float16"},
                    {"name": "position", "shape": [1], "dtype": "int32"}
                  ],
                  "outputs": [{"name": "logits", "shape": [1, 1, 1, 4096], "dtype": "float16"}]
                }
              },
              "states": [
                {"name": "key_cache", "shape": [1, 32, 512, 16], "dtype": "float16"},
                {"name": "value_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}
              ],
              "package_bytes": 878403,
              "weights_sha256": "eee73e8d10451525d0d517a795cc9aa51e7a81158e0fdbd7f1a96804f2499ae7"
            }
          ],
          "model": {"num_transformer_layers": 6, "model_dim": 192},
          "context_length": 512,
          "prefill_length": 64,
          "vocab_size": 4096,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "tokenizer": {"files": ["tokenizer.json", "tokenizer_config.json"], "add_bos": true},
          "functions": null,
          "states": null,
          "logits_layout": {"pieces": 1, "piece_size": 4096},
          "package_bytes": 2705566,
          "weights_sha256": null
        }
        """

    /// A single-package export from before `chunks` existed: the top level describes the package.
    static let unsplitWithoutChunks = """
        {
          "format": "elm-export/1",
          "name": "OpenELM-tiny-int4",
          "package": "OpenELM-tiny-int4.mlpackage",
          "model": {"num_transformer_layers": 6, "model_dim": 192},
          "context_length": 512,
          "prefill_length": 64,
          "vocab_size": 4096,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "tokenizer": {"files": ["tokenizer.json", "tokenizer_config.json"], "add_bos": true},
          "functions": {
            "prefill": {
              "inputs": [
                {"name": "input_ids", "shape": [1, 64], "dtype": "int32"},
                {"name": "position", "shape": [1], "dtype": "int32"}
              ],
              "outputs": [{"name": "logits", "shape": [1, 64, 1, 4096], "dtype": "float16"}]
            },
            "decode": {
              "inputs": [
                {"name": "input_ids", "shape": [1, 1], "dtype": "int32"},
                {"name": "position", "shape": [1], "dtype": "int32"}
              ],
              "outputs": [{"name": "logits", "shape": [1, 1, 1, 4096], "dtype": "float16"}]
            }
          },
          "states": [
            {"name": "key_cache", "shape": [1, 32, 512, 16], "dtype": "float16"},
            {"name": "value_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}
          ],
          "logits_layout": {"pieces": 1, "piece_size": 4096},
          "package_bytes": 2160486,
          "weights_sha256": "b495660f300c601cd58772d7eb3a9fd4ad02d5ad36ab7060ec969016a741bfcb"
        }
        """

    /// The current single-package layout: a one-entry `chunks` list and the same package at the top level.
    static var unsplit: String {
        let chunk = """
            "chunks": [{"package": "OpenELM-tiny-int4.mlpackage", "layers": [0, 6], "input": "input_ids", "output": "logits",
                        "functions": {"prefill": {"inputs": [{"name": "input_ids", "shape": [1, 64], "dtype": "int32"}, {"name": "position", "shape": [1], "dtype": "int32"}], "outputs": [{"name": "logits", "shape": [1, 64, 1, 4096], "dtype": "float16"}]}, "decode": {"inputs": [{"name": "input_ids", "shape": [1, 1], "dtype": "int32"}, {"name": "position", "shape": [1], "dtype": "int32"}], "outputs": [{"name": "logits", "shape": [1, 1, 1, 4096], "dtype": "float16"}]}},
                        "states": [{"name": "key_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}, {"name": "value_cache", "shape": [1, 32, 512, 16], "dtype": "float16"}],
                        "package_bytes": 2160486,
                        "weights_sha256": "b495660f300c601cd58772d7eb3a9fd4ad02d5ad36ab7060ec969016a741bfcb"}],
            """
        return unsplitWithoutChunks.replacingOccurrences(of: #""model": "#, with: chunk + "\n" + #""model": "#)
    }

    /// `text` as a JSON object, changed by `edit`, written back (key order is not kept; nothing reads it).
    /// The ManifestError text for export.json `text`, or "no error".
    static func message(_ text: String) -> String {
        do {
            _ = try ExportManifest(data: Data(text.utf8), source: "export.json")
            return "no error"
        } catch {
            #expect(error is ManifestError, "\(type(of: error)) is not a ManifestError")
            return "\(error)"
        }
    }

    static func edited(_ text: String, _ edit: (inout [String: Any]) -> Void) -> String {
        var object = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        edit(&object)
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// `text` with `chunks[index]` changed by `edit`.
    static func editedChunk(_ text: String, _ index: Int, _ edit: (inout [String: Any]) -> Void) -> String {
        edited(text) { object in
            var chunks = object["chunks"] as! [[String: Any]]
            edit(&chunks[index])
            object["chunks"] = chunks
        }
    }
}
