"""The plain conversion `make bench` compares against: trace + ct.convert + int4, nothing else.

One stateless function over 64 tokens, float32 weights, no KV cache, no Neural Engine shaping:
what a first script converting an OpenELM-sized model looks like.
Usage: python -m exporter.tools.bench_baseline SIZE OUTPUT.mlpackage
"""

import sys
import warnings

import numpy as np
import torch


def main(size: str, output: str) -> None:
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from exporter.model.load import random_model
    from exporter.model.presets import get_preset

    warnings.filterwarnings("ignore")
    model = random_model(get_preset(size).config(), seed=0)
    example = torch.zeros((1, 64), dtype=torch.int64)
    with torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="input_ids", shape=(1, 64), dtype=np.int32)],
                         minimum_deployment_target=ct.target.iOS18, skip_model_load=True)
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int4", granularity="per_block", block_size=32))
    cto.linear_quantize_weights(mlmodel, config=config).save(output)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
