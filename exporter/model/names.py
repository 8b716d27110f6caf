"""The names weights go by: in a checkpoint, and in a converted program (which --quant-map globs match)."""

EMBEDDING = "transformer.token_embeddings.weight"  # the tied table: token lookup and output projection
FINAL_NORM = "transformer.norm.weight"


def program_name(checkpoint_name: str) -> str:
    """The const name of a checkpoint tensor in the program: the export graph keeps the layers' module paths
    without `transformer.`, calls the last norm `final_norm`, and coremltools turns dots into underscores."""
    if checkpoint_name == FINAL_NORM:
        return "final_norm_weight"
    return checkpoint_name.removeprefix("transformer.").replace(".", "_")
