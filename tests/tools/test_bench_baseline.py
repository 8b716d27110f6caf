"""The plain script `make bench` compares against must keep converting: the reference traces as coremltools expects."""

import warnings

import numpy as np
import torch

from exporter.model.load import random_model
from tests.helpers import small_config


def test_reference_model_converts_with_a_plain_trace():
    import coremltools as ct

    model = random_model(small_config(num_layers=2), seed=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.zeros((1, 16), dtype=torch.int64), check_trace=False)
    # A head-group count read from traced shapes became a float tensor here, which coremltools' tile refuses.
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="input_ids", shape=(1, 16), dtype=np.int32)],
                         minimum_deployment_target=ct.target.iOS18, skip_model_load=True)
    assert "main" in mlmodel._mil_program.functions
