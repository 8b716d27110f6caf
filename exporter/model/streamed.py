"""A reference model whose weight matrices are read only when their layer runs.

Its matrices start as *placeholders*: one value broadcast to the matrix's shape, which costs no
memory. The export traces and converts such a skeleton (the real matrices are filled into the
converted program afterwards), and the same skeleton runs as the real model when hooks swap each
matrix in just before its module runs and drop it after (`materialized`, `streamed_model`): the
activation-range preflight and the verification of models too big to hold in float32 use that.
"""

from __future__ import annotations

from contextlib import contextmanager
from itertools import count
from typing import Callable

import torch
from torch import nn

from exporter.checkpoint.tensors import ReadAhead, TensorSource
from exporter.model.config import OpenELMConfig
from exporter.model.load import build_model
from exporter.model.names import EMBEDDING
from exporter.model.openelm import OpenELM

PLACEHOLDER_STEP = 1 / 1024  # placeholder k holds 1 + k/1024: exact in float16 for k < 1024


def placeholder(shape, index: int) -> nn.Parameter:
    """A [shape] parameter that is one stored number: distinct per index, no memory per element."""
    value = torch.full((), 1.0 + (index + 1) * PLACEHOLDER_STEP)
    return nn.Parameter(value.expand(shape), requires_grad=False)


def is_placeholder(tensor: torch.Tensor) -> bool:
    return tensor.dim() > 0 and tensor.numel() > 1 and all(stride == 0 for stride in tensor.stride())


def placeholder_index(value: float) -> int:
    return round((value - 1.0) / PLACEHOLDER_STEP) - 1


def is_matrix(shape: tuple) -> bool:
    return len(shape) == 2  # linear weights and the embedding; norms are vectors and stay real


def skeleton_model(config: OpenELMConfig, tensors: TensorSource,
                   placeholder_for: Callable[[str, tuple], nn.Parameter] | None = None) -> OpenELM:
    """The reference model with real norms and a placeholder for every matrix.

    placeholder_for(checkpoint name, shape): the placeholder of a layer's matrix (default: numbered in
    order). The embedding gets placeholder -1: the export graph keeps the table as pieces of its own.
    """
    numbers = count()
    placeholder_for = placeholder_for or (lambda name, shape: placeholder(shape, next(numbers)))
    state = {}
    for name, shape in tensors.expected.items():
        if name == EMBEDDING:
            state[name] = placeholder(shape, -1)
        elif is_matrix(shape):
            state[name] = placeholder_for(name, shape)
        else:
            state[name] = tensors.read(name)
    return build_model(config, state)


def is_streamed(model: OpenELM) -> bool:
    """Whether `model` is a skeleton (its matrices read when they run) rather than holding its weights."""
    return is_placeholder(model.transformer.token_embeddings.weight)


def streamed_source(model: OpenELM) -> TensorSource | None:
    """The tensors a `streamed_model` reads its matrices from; None for other models."""
    return getattr(model, "streamed_from", None)


def stream_weights(model: OpenELM, tensors: TensorSource) -> list:
    """Hooks that make the skeleton run as the real float32 model: each placeholder matrix is read just
    before its module runs and dropped after; the tied embedding stays loaded while the whole model runs."""
    hooks = []

    def swap_in(module, name):
        placeholder_param = module.weight
        module.weight = nn.Parameter(tensors.read(name), requires_grad=False)
        return placeholder_param

    def hold(module, name):
        saved = {}
        hooks.append(module.register_forward_pre_hook(lambda m, a: saved.__setitem__("p", swap_in(m, name))))
        hooks.append(module.register_forward_hook(lambda m, a, out: setattr(m, "weight", saved.pop("p"))))

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and is_placeholder(module.weight):
            hold(module, f"{name}.weight")
    if is_placeholder(model.transformer.token_embeddings.weight):
        embedding = model.transformer.token_embeddings
        saved = {}
        hooks.append(model.register_forward_pre_hook(
            lambda m, a: saved.__setitem__("p", swap_in(embedding, EMBEDDING))))
        hooks.append(model.register_forward_hook(lambda m, a, out: setattr(embedding, "weight", saved.pop("p"))))
    return hooks


@contextmanager
def materialized(model: OpenELM, tensors: TensorSource):
    """The skeleton running as the real model (stream_weights) inside the block, a skeleton again after."""
    hooks = stream_weights(model, tensors)
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


def streamed_model(config: OpenELMConfig, tensors: TensorSource, read_ahead: int = 0) -> OpenELM:
    """A reference model that reads its matrices from `tensors` whenever a layer runs: for models too
    big to hold in float32 next to what is being checked (each forward pass re-reads the weights).
    read_ahead: how many matrices to read ahead on worker threads while a layer computes (ReadAhead)."""
    if read_ahead:
        tensors = ReadAhead(tensors, streaming_order(tensors), read_ahead)
    model = skeleton_model(config, tensors)
    stream_weights(model, tensors)
    model.streamed_from = tensors  # a plain attribute: whoever needs the weights another way reads them there
    return model


def streaming_order(tensors: TensorSource) -> list[str]:
    """The matrices in the order a streamed forward pass reads them: the tied embedding, then the layers'
    (modules are declared, and so named, in the order they run)."""
    return [name for name, shape in tensors.expected.items() if is_matrix(shape)]


@contextmanager
def holding(model: OpenELM, tensors: TensorSource, names: set[str], dtype: torch.dtype = torch.float16):
    """The skeleton with the real `names` weights in `dtype` inside the block (matrices read, norms cast),
    as it was after: what a backend that converts real weights (Core AI) needs of one chunk, and no more."""
    swapped = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if f"{name}.weight" in names and isinstance(weight, torch.Tensor):
            real = tensors.read(f"{name}.weight", dtype) if is_placeholder(weight) else weight.detach().to(dtype)
            swapped.append((module, weight))
            module.weight = nn.Parameter(real, requires_grad=False)
    try:
        yield model
    finally:
        for module, placeholder_param in swapped:
            module.weight = placeholder_param
