"""Weight-compression recipes: what `--quant NAME` does to a converted Core ML program.

Each recipe is a coremltools `OptimizationConfig` applied to the converted program, so the
compressed weights are stored with Core ML's own constexpr ops and expanded on device.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.errors import UsageError

MIN_WEIGHT_ELEMENTS = 2048  # norms and other tiny tensors stay float16: compressing them saves nothing


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str  # one line for --help and the README
    weight_bits: int  # bits per weight element of the compressed tensors (16 = uncompressed)

    def op_config(self):
        """The coremltools per-op config for weight matrices, or None for plain float16."""
        import coremltools.optimize.coreml as cto

        if self.name == "int8":
            op = cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype="int8", granularity="per_channel",
                weight_threshold=MIN_WEIGHT_ELEMENTS,
            )
        elif self.name == "int4":
            op = cto.OpLinearQuantizerConfig(
                mode="linear_symmetric", dtype="int4", granularity="per_block", block_size=32,
                weight_threshold=MIN_WEIGHT_ELEMENTS,
            )
        else:
            return None
        return op

    def apply(self, mlmodel):
        """Compress `mlmodel`'s weight matrices; deterministic, so two functions get byte-identical weights."""
        import coremltools.optimize.coreml as cto

        op_config = self.op_config()
        if op_config is None:
            return mlmodel
        # Only the matrices that feed a `linear` are weights; rotary tables and other constants stay float16.
        config = cto.OptimizationConfig(op_name_configs={name: op_config for name in weight_matrix_names(mlmodel)})
        return cto.linear_quantize_weights(mlmodel, config=config, joint_compression=False)

    def to_dict(self) -> dict:
        return {"recipe": self.name, "summary": self.summary, "weight_bits": self.weight_bits}


def weight_matrix_names(mlmodel) -> list[str]:
    """Names of the const ops that are the `weight` input of a `linear` op in the program."""
    names = []
    for function in mlmodel._mil_program.functions.values():
        for op in function.operations:
            if op.op_type == "linear" and op.weight.op is not None and op.weight.op.op_type == "const":
                names.append(op.weight.op.name)
    return sorted(set(names))


RECIPES = {
    r.name: r
    for r in (
        Recipe("none", "float16 weights, no compression (the parity baseline)", 16),
        Recipe("int8", "int8 per-output-channel linear weights (any compute unit)", 8),
        Recipe("int4", "int4 per-block (32) linear weights, Apple's GPU recipe for on-device LLMs", 4),
    )
}
DEFAULT_RECIPE = "int4"


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UsageError(f"unknown --quant recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]
