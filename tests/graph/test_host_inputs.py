"""The inputs the caller computes for the Neural Engine graph, and the export.json contract that describes them."""

import numpy as np
import torch

from exporter.graph.contract import contract, logit_functions, target_of
from exporter.graph.host_inputs import MASK_VALUE, mask_input, rotary_input
from exporter.model.openelm import apply_rotary


def test_rotary_rows_rotate_as_the_reference_does():
    head_dim, position, tokens = 16, 37, 4
    table = torch.from_numpy(rotary_input(position, tokens, head_dim, 10000.0)).float()[0]  # [T, 2 * hd]
    cos, signed_sin = table[:, :head_dim], table[:, head_dim:]
    x = torch.randn(1, 1, tokens, head_dim)
    half = head_dim // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    from exporter.model.openelm import rotary_tables

    ref_cos, ref_sin = rotary_tables(torch.arange(position, position + tokens), head_dim, 10000.0)
    assert torch.allclose(x * cos + swapped * signed_sin, apply_rotary(x, ref_cos, ref_sin), atol=2e-3)


def test_mask_lets_each_row_see_its_own_position_and_before():
    mask = mask_input(5, 3, 16)[0]
    assert mask.dtype == np.float16 and mask.shape == (3, 16)
    for row in range(3):
        assert (mask[row, : 5 + row + 1] == 0).all() and (mask[row, 5 + row + 1 :] == MASK_VALUE).all()


def test_contract_names_what_each_target_calls():
    assert target_of({}) == "gpu" and target_of({"graph": {"target": "ane"}}) == "ane"
    assert contract("ane")["functions"] == ["embed_prefill", "embed_decode", "prefill", "decode"]
    assert not contract("ane")["prefill_logits"] and contract("gpu")["prefill_logits"]
    assert logit_functions("ane") == ("decode", "verify") and logit_functions("gpu") == ("prefill", "decode", "verify")


def test_the_swift_golden_inputs_are_what_python_computes():
    """swift_harness checks its rotary and mask bits against Fixtures/neural_engine_inputs_golden.json: that file
    must stay what exporter.graph.host_inputs computes."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "swift_harness/Tests/ELMKitTests/Fixtures/neural_engine_inputs_golden.json"
    golden = json.loads(path.read_text())
    assert golden["mask_value"] == MASK_VALUE
    for case in golden["rotary"]:
        values = rotary_input(case["position"], case["tokens"], case["head_dim"], case["base"])
        assert list(values.shape) == case["shape"]
        np.testing.assert_array_equal(values.astype(np.float64).reshape(-1), np.asarray(case["values"]))
    for case in golden["mask"]:
        values = mask_input(case["position"], case["tokens"], case["context_length"])
        np.testing.assert_array_equal(values.astype(np.float64).reshape(-1), np.asarray(case["values"]))
