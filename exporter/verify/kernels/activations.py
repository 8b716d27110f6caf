"""Activation kernels: sigmoid family, ReLU family, GELU, ELU, softmax."""

from __future__ import annotations

import math

import numpy as np

from exporter.verify.kernels.elementwise import erf, unary_float
from exporter.verify.kernels.operands import f32
from exporter.verify.kernels.registry import ExecutorError, register


def stable_sigmoid(x):
    # exp of a non-positive argument only: no float32 overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


register("sigmoid")(unary_float(stable_sigmoid))
register("silu")(unary_float(lambda x: x * stable_sigmoid(x)))
register("relu")(unary_float(lambda x: np.maximum(x, np.float32(0))))
register("relu6")(unary_float(lambda x: np.clip(x, np.float32(0), np.float32(6))))
register("softplus")(unary_float(lambda x: np.logaddexp(np.float32(0), x)))
register("softsign")(unary_float(lambda x: x / (1 + np.abs(x))))


@register("gelu")
def gelu(op, x, mode="EXACT"):
    x = f32(x)
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * stable_sigmoid(np.float32(1.702) * x)
    if mode == "EXACT":
        return 0.5 * x * (1 + erf(x / np.float32(math.sqrt(2))))
    raise ExecutorError(f"gelu {op.name!r}: unknown mode {mode!r}")


@register("leaky_relu")
def leaky_relu(op, x, alpha):
    x = f32(x)
    return np.where(x >= 0, x, f32(alpha) * x)


@register("elu")
def elu(op, x, alpha):
    x = f32(x)
    return np.where(x > 0, x, f32(alpha) * np.expm1(np.minimum(x, 0)))


@register("softmax")
def softmax(op, x, axis=-1):
    x = f32(x)
    axis = int(axis)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)
