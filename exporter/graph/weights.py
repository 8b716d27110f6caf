"""Which weight matrices an export graph holds, and where each one's rows come from in the checkpoint.

The graph is traced with placeholders (exporter.model.streamed) instead of real matrices; the plan
numbers them, so each const of the converted program says which matrix it stands for and the
backend can fill the real rows in afterwards. Placeholder k of the plan holds 1 + (k + 1)/1024.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from exporter.model.names import EMBEDDING, program_name
from exporter.model.streamed import is_placeholder, placeholder, placeholder_index


@dataclass(frozen=True)
class Matrix:
    """One weight matrix of the export graph: where its rows come from in the checkpoint."""

    name: str  # the const name in the program, which the recipes' --quant-map globs match
    source: str  # checkpoint tensor name
    rows: tuple[int, int]  # [start, stop) of the source's rows; rows past the source are zero padding
    shape: tuple[int, int]


class WeightPlan:
    """Placeholder index → matrix, for every weight matrix of one export module."""

    def __init__(self):
        self.matrices: list[Matrix] = []

    def add(self, name: str, source: str, rows: tuple[int, int], shape: tuple[int, int]) -> nn.Parameter:
        """A placeholder for the matrix `name` (the same index when asked again: both functions share it)."""
        for index, matrix in enumerate(self.matrices):
            if matrix.name == name:
                return placeholder(shape, index)
        self.matrices.append(Matrix(name, source, rows, tuple(shape)))
        return placeholder(shape, len(self.matrices) - 1)

    def vocab_pieces(self, pieces: int, piece_size: int, model_dim: int) -> list[nn.Parameter]:
        """Placeholders for the export module's pieces of the (tied) embedding, zero-padded past the vocabulary."""
        return [self.add(f"vocab_pieces_{i}", EMBEDDING, (i * piece_size, (i + 1) * piece_size),
                         (piece_size, model_dim)) for i in range(pieces)]

    def matrix_placeholder(self, checkpoint_name: str, shape: tuple[int, int]) -> nn.Parameter:
        """A layer's whole matrix (skeleton_model's `placeholder_for`)."""
        return self.add(program_name(checkpoint_name), checkpoint_name, (0, shape[0]), shape)


def placeholders_of(module: nn.Module) -> set[int]:
    """Plan indices of the placeholder matrices `module` uses (what its converted program must contain)."""
    return {placeholder_index(float(p.detach().reshape(-1)[0])) for p in module.parameters() if is_placeholder(p)}
