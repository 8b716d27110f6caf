"""Each NumPy kernel of the Linux executor against the op's documented semantics.

Ops are built with coremltools' own MIL builder (the real op classes, attribute names and
defaults), executed by `ProgramExecutor`, and compared with an independent NumPy/torch
expectation and, where coremltools implements value inference, with coremltools' constant
folding of the same op. Compressed-weight ops are compared with coremltools' expansion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import Function, Program, types  # noqa: E402

from exporter.coreml.package import load_program  # noqa: E402
from exporter.errors import ExportError  # noqa: E402
from exporter.verify.executor import ExecutorError, ProgramExecutor, UnsupportedOpError  # noqa: E402
from exporter.verify.kernels import OPS  # noqa: E402

IOS15, IOS16, IOS18 = ct.target.iOS15, ct.target.iOS16, ct.target.iOS18
RNG = np.random.default_rng(0)


def rand(*shape, low=-2.0, high=2.0, dtype=np.float32):
    return RNG.uniform(low, high, size=shape).astype(dtype)


def build_program(build: Callable, inputs: dict[str, np.ndarray], opset=IOS18, states=None, name="main") -> Program:
    """A one-function program: placeholders for `inputs` (and states), body from `build(**vars)`."""
    specs = {
        k: mb.placeholder(shape=v.shape, dtype=types.numpy_type_to_builtin_type(v.dtype)) for k, v in inputs.items()
    }
    for state_name, (shape, dtype) in (states or {}).items():
        specs[state_name] = mb.StateTensorSpec(shape, dtype=dtype)
    with Function(specs, opset_version=opset) as function:
        outputs = build(**function.inputs)
        function.set_outputs(list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
    program = Program()
    program.add_function(name, function)
    return program


def execute(build: Callable, opset=IOS18, **inputs):
    executor = ProgramExecutor.from_program(build_program(build, inputs, opset))
    values = list(executor.run("main", inputs, {}).values())
    return values[0] if len(values) == 1 else values


def folded(build: Callable, opset=IOS18, **inputs):
    """coremltools' own value inference of the op on constant inputs (None where it has none)."""
    with Function({}, opset_version=opset), np.errstate(over="ignore"):  # its sigmoid overflows exp() for -100
        out = build(**{k: mb.const(val=v) for k, v in inputs.items()})
        return out.val if not isinstance(out, (list, tuple)) else [o.val for o in out]


@dataclass
class Case:
    op: str
    build: Callable
    inputs: dict
    expected: Callable  # numpy reference from the inputs
    opset: object = IOS18
    tol: float = 1e-6
    id: str = ""
    fold: bool = True  # also compare with coremltools' value inference


def c(op, build, expected, opset=IOS18, tol=1e-6, id="", fold=True, **inputs):
    return Case(op, build, inputs, expected, opset, tol, id or op, fold)


X, Y = rand(3, 4), rand(1, 4, low=0.5, high=2.0)
I, J = np.array([[-7, 7, 5, -5]], np.int32), np.array([[2, 2, -3, -3]], np.int32)
B1, B2 = np.array([True, False, True, False]), np.array([True, True, False, False])
UNIT = rand(5, low=-0.9, high=0.9)
POS = rand(5, low=0.1, high=4.0)
W64, B6, G4, B4 = rand(6, 4), rand(6), rand(4), rand(4)
W_CONV = rand(3, 4, 1, 1)  # a 1x1 convolution: the Neural Engine graph's projections


def sigmoid(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def erf(x):
    return torch.special.erf(torch.from_numpy(x.astype(np.float64))).numpy()


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = [
    # elementwise binary (broadcasting)
    c("add", lambda x, y: mb.add(x=x, y=y), lambda x, y: x + y, x=X, y=Y),
    c("add", lambda x, y: mb.add(x=x, y=y), lambda x, y: x + y, id="add_int32", x=I, y=J),
    c("sub", lambda x, y: mb.sub(x=x, y=y), lambda x, y: x - y, x=X, y=Y),
    c("mul", lambda x, y: mb.mul(x=x, y=y), lambda x, y: x * y, x=X, y=Y),
    c("real_div", lambda x, y: mb.real_div(x=x, y=y), lambda x, y: x / y, x=X, y=Y),
    c("floor_div", lambda x, y: mb.floor_div(x=x, y=y), lambda x, y: np.floor(x / y), x=X, y=Y, tol=1e-5),
    c("floor_div", lambda x, y: mb.floor_div(x=x, y=y), lambda x, y: x // y, id="floor_div_int32", x=I, y=J),
    c("mod", lambda x, y: mb.mod(x=x, y=y), lambda x, y: np.mod(x, y), x=X, y=Y, tol=1e-5),
    c("mod", lambda x, y: mb.mod(x=x, y=y), lambda x, y: np.mod(x, y), id="mod_int32", x=I, y=J),
    c("pow", lambda x, y: mb.pow(x=x, y=y), lambda x, y: np.power(x.astype(np.float64), y), x=POS, y=rand(5), tol=1e-5),
    c("pow", lambda x: mb.pow(x=x, y=np.float32(2)), lambda x: x.astype(np.float64) ** 2, id="pow_square", x=X),
    c("maximum", lambda x, y: mb.maximum(x=x, y=y), np.maximum, x=X, y=Y),
    c("minimum", lambda x, y: mb.minimum(x=x, y=y), np.minimum, x=X, y=Y),
    c("equal", lambda x, y: mb.equal(x=x, y=y), np.equal, x=I, y=np.array([[-7, 0, 5, 0]], np.int32)),
    c("not_equal", lambda x, y: mb.not_equal(x=x, y=y), np.not_equal, x=I, y=np.array([[-7, 0, 5, 0]], np.int32)),
    c("greater", lambda x, y: mb.greater(x=x, y=y), np.greater, x=X, y=Y),
    c("greater_equal", lambda x, y: mb.greater_equal(x=x, y=y), np.greater_equal,
      x=I, y=np.array([[-7, 8, 4, 0]], np.int32)),
    c("less", lambda x, y: mb.less(x=x, y=y), np.less, x=X, y=Y),
    c("less_equal", lambda x, y: mb.less_equal(x=x, y=y), np.less_equal, x=I, y=np.array([[-7, 8, 4, 0]], np.int32)),
    c("logical_and", lambda x, y: mb.logical_and(x=x, y=y), np.logical_and, x=B1, y=B2),
    c("logical_or", lambda x, y: mb.logical_or(x=x, y=y), np.logical_or, x=B1, y=B2),
    c("logical_xor", lambda x, y: mb.logical_xor(x=x, y=y), np.logical_xor, x=B1, y=B2),
    c("logical_not", lambda x: mb.logical_not(x=x), np.logical_not, x=B1),
    c("select", lambda cond, a, b: mb.select(cond=cond, a=a, b=b), lambda cond, a, b: np.where(cond, a, b),
      cond=B1, a=rand(3, 4), b=rand(1, 4)),
    # elementwise unary
    c("abs", lambda x: mb.abs(x=x), np.abs, x=X),
    c("abs", lambda x: mb.abs(x=x), np.abs, id="abs_int32", x=I),
    c("sign", lambda x: mb.sign(x=x), np.sign, x=X),
    c("square", lambda x: mb.square(x=x), np.square, x=X),
    c("exp", lambda x: mb.exp(x=x), np.exp, x=X, tol=1e-6),
    c("exp2", lambda x: mb.exp2(x=x), np.exp2, x=X, tol=1e-6),
    c("sqrt", lambda x: mb.sqrt(x=x), np.sqrt, x=POS),
    c("sin", lambda x: mb.sin(x=x), np.sin, x=X),
    c("cos", lambda x: mb.cos(x=x), np.cos, x=X),
    c("tan", lambda x: mb.tan(x=x), np.tan, x=UNIT, tol=1e-5),
    c("tanh", lambda x: mb.tanh(x=x), np.tanh, x=X),
    c("sinh", lambda x: mb.sinh(x=x), np.sinh, x=X),
    c("cosh", lambda x: mb.cosh(x=x), np.cosh, x=X),
    c("asin", lambda x: mb.asin(x=x), np.arcsin, x=UNIT),
    c("acos", lambda x: mb.acos(x=x), np.arccos, x=UNIT),
    c("atan", lambda x: mb.atan(x=x), np.arctan, x=X),
    c("atanh", lambda x: mb.atanh(x=x), np.arctanh, x=UNIT, tol=1e-5),
    c("floor", lambda x: mb.floor(x=x), np.floor, x=X),
    c("ceil", lambda x: mb.ceil(x=x), np.ceil, x=X),
    c("round", lambda x: mb.round(x=x), np.round, x=np.array([0.5, 1.5, -2.5, 2.4], np.float32)),
    c("erf", lambda x: mb.erf(x=x), erf, x=X),
    c("sigmoid", lambda x: mb.sigmoid(x=x), sigmoid, x=np.array([-100.0, -1.0, 0.0, 2.0, 100.0], np.float32)),
    c("silu", lambda x: mb.silu(x=x), lambda x: x * sigmoid(x), x=X),
    c("relu", lambda x: mb.relu(x=x), lambda x: np.maximum(x, 0), x=X),
    c("relu6", lambda x: mb.relu6(x=x), lambda x: np.clip(x, 0, 6), x=X * 5),
    c("softplus", lambda x: mb.softplus(x=x), lambda x: np.log1p(np.exp(x.astype(np.float64))), x=X),
    c("softsign", lambda x: mb.softsign(x=x), lambda x: x / (1 + np.abs(x)), x=X),
    c("rsqrt", lambda x: mb.rsqrt(x=x, epsilon=np.float32(0.5)), lambda x: 1 / np.sqrt(x + 0.5), x=POS),
    c("inverse", lambda x: mb.inverse(x=x, epsilon=np.float32(0.25)), lambda x: 1 / (x + 0.25), x=POS),
    c("log", lambda x: mb.log(x=x, epsilon=np.float32(1e-3)), lambda x: np.log(x + 1e-3), x=POS),
    c("clip", lambda x: mb.clip(x=x, alpha=np.float32(-0.5), beta=np.float32(1.0)), lambda x: np.clip(x, -0.5, 1.0),
      x=X),
    c("threshold", lambda x: mb.threshold(x=x, alpha=np.float32(0.3)), lambda x: np.maximum(x, 0.3), x=X),
    c("cast", lambda x: mb.cast(x=x, dtype="int32"), lambda x: np.trunc(x), id="cast_fp32_int32", x=X * 3),
    c("cast", lambda x: mb.cast(x=x, dtype="fp16"), lambda x: x.astype(np.float16), id="cast_fp32_fp16", x=X),
    c("cast", lambda x: mb.cast(x=x, dtype="bool"), lambda x: x != 0, id="cast_int32_bool",
      x=np.array([0, 3, -1], np.int32)),
    c("cast", lambda x: mb.cast(x=x, dtype="uint16"), lambda x: x, id="cast_int32_uint16",
      x=np.array([0, 7, 300], np.int32)),
    # activations
    c("gelu", lambda x: mb.gelu(x=x), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), id="gelu_exact", x=X),
    c("gelu", lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"),
      lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))), id="gelu_tanh", x=X),
    c("gelu", lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"), lambda x: x * sigmoid(1.702 * x),
      id="gelu_sigmoid", x=X),
    c("leaky_relu", lambda x: mb.leaky_relu(x=x, alpha=np.float32(0.1)), lambda x: np.where(x >= 0, x, 0.1 * x), x=X),
    c("elu", lambda x: mb.elu(x=x, alpha=np.float32(0.7)), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)), x=X),
    c("softmax", lambda x: mb.softmax(x=x, axis=0), lambda x: softmax(x, 0), x=X),
    # reductions
    *[
        c(name, lambda x, n=name: getattr(mb, n)(x=x, axes=[1], keep_dims=True), lambda x, f=f: f(x), x=X, tol=1e-5)
        for name, f in [
            ("reduce_sum", lambda x: x.sum(1, keepdims=True)),
            ("reduce_prod", lambda x: x.prod(1, keepdims=True)),
            ("reduce_max", lambda x: x.max(1, keepdims=True)),
            ("reduce_min", lambda x: x.min(1, keepdims=True)),
            ("reduce_mean", lambda x: x.mean(1, keepdims=True)),
            ("reduce_sum_square", lambda x: (x**2).sum(1, keepdims=True)),
            ("reduce_l1_norm", lambda x: np.abs(x).sum(1, keepdims=True)),
            ("reduce_l2_norm", lambda x: np.sqrt((x**2).sum(1, keepdims=True))),
            ("reduce_log_sum_exp", lambda x: np.log(np.exp(x).sum(1, keepdims=True))),
        ]
    ],
    c("reduce_log_sum", lambda x: mb.reduce_log_sum(x=x, axes=[0, 1]), lambda x: np.log(x.sum()), x=np.abs(X) + 0.1),
    c("reduce_mean", lambda x: mb.reduce_mean(x=x), lambda x: x.mean(), id="reduce_mean_all_axes", x=X),
    c("reduce_argmax", lambda x: mb.reduce_argmax(x=x, axis=0), lambda x: x.argmax(0), x=X),
    c("reduce_argmin", lambda x: mb.reduce_argmin(x=x, axis=1, keep_dims=True), lambda x: x.argmin(1)[:, None], x=X),
    c("cumsum", lambda x: mb.cumsum(x=x, axis=1), lambda x: np.cumsum(x, 1), x=X, tol=1e-5),
    c("cumsum", lambda x: mb.cumsum(x=x, axis=1, exclusive=True, reverse=True),
      lambda x: np.flip(np.cumsum(np.flip(x, 1), 1), 1) - x, id="cumsum_exclusive_reverse", x=X, tol=1e-5,
      fold=False),  # coremltools' value inference crashes on exclusive=True
    # linear algebra and normalization
    c("linear", lambda x: mb.linear(x=x, weight=W64, bias=B6),
      lambda x: x @ W64.T + B6, id="linear_rank2", x=X, tol=1e-5),
    c("linear", lambda x: mb.linear(x=x, weight=W64), lambda x: x @ W64.T, id="linear_rank1_no_bias", x=X[0], tol=1e-5),
    c("linear", lambda x: mb.linear(x=x, weight=W64, bias=B6), lambda x: x @ W64.T + B6, id="linear_rank3",
      x=rand(2, 3, 4), tol=1e-5),
    c("matmul", lambda x, y: mb.matmul(x=x, y=y), np.matmul, id="matmul_broadcast",
      x=rand(2, 1, 3, 4), y=rand(5, 4, 2), tol=1e-5),
    c("matmul", lambda x, y: mb.matmul(x=x, y=y, transpose_x=True, transpose_y=True),
      lambda x, y: np.swapaxes(x, -1, -2) @ np.swapaxes(y, -1, -2), id="matmul_transposed",
      x=rand(2, 4, 3), y=rand(2, 5, 4), tol=1e-5),
    c("matmul", lambda x, y: mb.matmul(x=x, y=y), np.matmul, id="matmul_vector", x=rand(4), y=rand(4, 2), tol=1e-5),
    c("layer_norm", lambda x: mb.layer_norm(x=x, axes=[-1], gamma=G4, beta=B4, epsilon=np.float32(1e-3)),
      lambda x: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * G4 + B4,
      x=rand(2, 3, 4), tol=2e-3),  # the kernel squares in float16, as a float16 device may
    c("layer_norm", lambda x: mb.layer_norm(x=x, axes=[1], epsilon=np.float32(1e-5)),
      lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5), id="layer_norm_channels",
      x=rand(1, 6, 1, 5), tol=2e-3),
    c("conv", lambda x: mb.conv(x=x, weight=W_CONV), lambda x: np.einsum("oi,bihw->bohw", W_CONV[:, :, 0, 0], x),
      x=rand(2, 4, 1, 5), tol=1e-5),
    c("einsum", lambda x, y: mb.einsum(values=(x, y), equation="bkhc,bchq->bkhq"),
      lambda x, y: np.einsum("bkhc,bchq->bkhq", x, y), x=rand(1, 7, 1, 4), y=rand(1, 4, 1, 3), tol=1e-5),
    c("einsum", lambda x, y: mb.einsum(values=(x, y), equation="nchw,nwhu->nchu"),
      lambda x, y: np.einsum("nchw,nwhu->nchu", x, y), id="einsum_values", x=rand(1, 4, 1, 7), y=rand(1, 7, 1, 3),
      tol=1e-5),
    # shape and data movement
    c("identity", lambda x: mb.identity(x=x), lambda x: x, x=X),
    c("shape", lambda x: mb.shape(x=x), lambda x: np.array(x.shape), x=rand(2, 3, 4)),
    c("reshape", lambda x: mb.reshape(x=x, shape=[1, 0, -1, 0]), lambda x: x.reshape(1, 1, 2, 50),
      id="reshape_ios17_zero_from_right", x=rand(2, 50)),
    c("reshape", lambda x: mb.reshape(x=x, shape=[0, -1, 2]), lambda x: x.reshape(2, 6, 2),
      id="reshape_ios15_zero_same_axis", opset=IOS15, x=rand(2, 3, 4)),
    c("transpose", lambda x: mb.transpose(x=x, perm=[2, 0, 1]), lambda x: x.transpose(2, 0, 1), x=rand(2, 3, 4)),
    c("expand_dims", lambda x: mb.expand_dims(x=x, axes=[0, -1]), lambda x: x[None, :, :, None], x=X),
    # (value inference uses np.squeeze, which errors where the doc says non-single axes are ignored)
    c("squeeze", lambda x: mb.squeeze(x=x, axes=[0, 2]), lambda x: x.reshape(3, 4),
      id="squeeze_axes_ignores_non_single", x=rand(1, 3, 4), fold=False),
    c("squeeze", lambda x: mb.squeeze(x=x), lambda x: x.reshape(3, 4), id="squeeze_all", x=rand(1, 3, 1, 4)),
    c("slice_by_index", lambda x: mb.slice_by_index(x=x, begin=[1, 0, -3], end=[0, 3, 4], stride=[1, 2, 1],
                                                    end_mask=[True, False, False], squeeze_mask=[False, False, False]),
      lambda x: x[1:, 0:3:2, -3:4], x=rand(3, 4, 5)),
    c("slice_by_index", lambda x: mb.slice_by_index(x=x, begin=[0, 2, 1], end=[0, 0, 0],
                                                    begin_mask=[True, False, False], end_mask=[True, True, False],
                                                    squeeze_mask=[False, False, True]),
      lambda x: x[:, 2:, 1], id="slice_by_index_squeeze", x=rand(3, 4, 5)),
    c("slice_by_size", lambda x: mb.slice_by_size(x=x, begin=[1, 2], size=[2, -1]), lambda x: x[1:3, 2:], x=X),
    c("slice_update", lambda x, u: mb.slice_update(x=x, update=u, begin=[0, 1], end=[3, 4], stride=[2, 2]),
      lambda x, u: _assign(x, (slice(0, 3, 2), slice(1, 4, 2)), u), x=X, u=rand(2, 2)),
    c("slice_update", lambda x, u: mb.slice_update(x=x, update=u, begin=[1, 0], end=[0, 0], end_mask=[False, True],
                                                   squeeze_mask=[True, False]),
      lambda x, u: _assign(x, (1, slice(None)), u), id="slice_update_squeeze", x=X, u=rand(4)),
    c("concat", lambda x, y: mb.concat(values=[x, y, x], axis=0), lambda x, y: np.concatenate([x, y, x], 0), x=X, y=Y),
    c("concat", lambda x, y: mb.concat(values=[x, y], axis=1, interleave=True),
      lambda x, y: np.stack([x, y], 2).reshape(3, 8), id="concat_interleave", x=X, y=rand(3, 4),
      fold=False),  # value inference ignores interleave
    c("stack", lambda x, y: mb.stack(values=[x, y], axis=1), lambda x, y: np.stack([x, y], 1), x=X, y=rand(3, 4)),
    c("split", lambda x: mb.split(x=x, split_sizes=[1, 3], axis=1), lambda x: [x[:, :1], x[:, 1:]], x=X),
    c("split", lambda x: mb.split(x=x, num_splits=2, axis=-1), lambda x: [x[:, :2], x[:, 2:]], id="split_even", x=X),
    c("tile", lambda x: mb.tile(x=x, reps=[2, 1]), lambda x: np.tile(x, (2, 1)), x=X),
    c("fill", lambda x: mb.fill(shape=[2, 3], value=np.float32(1.5)), lambda x: np.full((2, 3), 1.5), x=X),
    c("fill_like", lambda x: mb.fill_like(ref_tensor=x, value=np.float32(-2)), lambda x: np.full(x.shape, -2.0), x=X),
    c("range_1d", lambda x: mb.range_1d(start=np.int32(2), end=np.int32(11), step=np.int32(3)),
      lambda x: np.arange(2, 11, 3), x=X),
    c("range_1d", lambda x: mb.range_1d(start=np.float32(0.5), end=np.float32(2.0), step=np.float32(0.25)),
      lambda x: np.arange(0.5, 2.0, 0.25), id="range_1d_float", x=X),
    c("band_part", lambda x: mb.band_part(x=x, lower=np.int32(1), upper=np.int32(0)),
      lambda x: np.tril(np.triu(x, -1), 0), x=rand(4, 5)),
    c("pad", lambda x: mb.pad(x=x, pad=[1, 0, 2, 1], constant_val=np.float32(9)),
      lambda x: np.pad(x, [(1, 0), (2, 1)], constant_values=9), x=X),
    c("pad", lambda x: mb.pad(x=x, pad=[2, 1], mode="reflect"), lambda x: np.pad(x, [(0, 0), (2, 1)], mode="reflect"),
      id="pad_reflect", x=X),
    c("pad", lambda x: mb.pad(x=x, pad=[1, 2], mode="replicate"), lambda x: np.pad(x, [(0, 0), (1, 2)], mode="edge"),
      id="pad_replicate", x=X),
    c("gather", lambda x, i: mb.gather(x=x, indices=i, axis=1), lambda x, i: np.take(x, i, axis=1),
      x=X, i=np.array([[3, 0], [1, 1]], np.int32)),
    c("gather", lambda x, i: mb.gather(x=x, indices=i, axis=1, batch_dims=1),
      lambda x, i: np.stack([x[b][i[b]] for b in range(3)]), id="gather_batch_dims",
      x=X, i=np.array([[3, 0], [1, 1], [2, 2]], np.int32)),
    c("gather", lambda x, i: mb.gather(x=x, indices=i, axis=0), lambda x, i: np.take(x, i, axis=0),
      id="gather_ios16_negative_wraps", opset=IOS16, x=X, i=np.array([-1, 0], np.int32)),
    c("gather_along_axis", lambda x, i: mb.gather_along_axis(x=x, indices=i, axis=1),
      lambda x, i: np.take_along_axis(x, i, 1), x=X, i=np.array([[0], [3], [1]], np.int32)),
]

def _assign(x, index, update):
    out = x.copy()
    out[index] = update
    return out


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_op_matches_numpy_and_coremltools(case):
    expected = case.expected(*case.inputs.values())
    result = execute(case.build, opset=case.opset, **case.inputs)
    results = result if isinstance(result, list) else [result]
    expectations = expected if isinstance(expected, list) else [expected]
    for got, want in zip(results, expectations):
        np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64), rtol=case.tol, atol=case.tol)
    reference = folded(case.build, opset=case.opset, **case.inputs) if case.fold else None
    references = reference if isinstance(reference, list) else [reference]
    if all(r is not None for r in references):
        for got, want in zip(results, references):
            tol = max(case.tol, 1e-5)  # layer_norm's float16 squares: its tolerance against coremltools' float32 too
            np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64), rtol=tol, atol=tol)


def test_every_registered_op_has_a_case():
    tested = {case.op for case in CASES} | STATE_AND_WEIGHT_OPS
    assert sorted(set(OPS) - tested) == []


STATE_AND_WEIGHT_OPS = {
    "read_state",
    "coreml_update_state",
    "scaled_dot_product_attention",
    "constexpr_blockwise_shift_scale",
    "constexpr_lut_to_dense",
    "constexpr_sparse_to_dense",
    "constexpr_lut_to_sparse",
    "constexpr_sparse_blockwise_shift_scale",
    "constexpr_affine_dequantize",
    "constexpr_cast",
}


def test_scaled_dot_product_attention_matches_torch():
    q, k, v = rand(1, 2, 3, 4), rand(1, 2, 5, 4), rand(1, 2, 5, 6)
    bool_mask = np.tril(np.ones((3, 5), bool), 2)
    float_mask = rand(3, 5)
    for mask in (bool_mask, float_mask):
        got = execute(lambda q, k, v, m: mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=m),
                      q=q, k=k, v=v, m=mask)
        want = torch.nn.functional.scaled_dot_product_attention(
            *map(torch.from_numpy, (q, k, v)), attn_mask=torch.from_numpy(mask)
        )
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


# --- float16 storage ------------------------------------------------------------------------------


def test_float16_results_overflow_to_inf_as_on_device():
    x = np.array([300.0, -300.0, 1.0], np.float16)
    assert_equal_fp16(execute(lambda x: mb.mul(x=x, y=x), x=x), [np.inf, np.inf, 1.0])
    assert_equal_fp16(execute(lambda x: mb.mul(x=x, y=np.float16(-300)), x=x), [-np.inf, np.inf, -300.0])
    big = np.array([60000.0, 65504.0], np.float16)
    assert_equal_fp16(execute(lambda x: mb.add(x=x, y=np.float16(10000)), x=big), [np.inf, np.inf])
    # below the overflow threshold results round to the float16 grid (spacing 32 here) instead
    assert_equal_fp16(execute(lambda x: mb.add(x=x, y=np.float16(15)), x=big), [60000.0, 65504.0])


def test_intermediate_values_are_stored_in_float16():
    # exp(11.5) = 98715 is inf in float16; with float32 storage the halving would bring it back to 49357.
    x = np.array([11.5, 1.0], np.float16)
    got = execute(lambda x: mb.mul(x=mb.exp(x=x), y=np.float16(0.5)), x=x)
    assert got.dtype == np.float16
    assert np.isinf(got[0]) and got[1] == np.float16(np.float16(np.exp(1.0)) * np.float16(0.5))


def test_float16_arithmetic_is_correctly_rounded():
    x = rand(1000, low=-100, high=100).astype(np.float16)
    y = rand(1000, low=0.5, high=100).astype(np.float16)
    exact = {"add": x.astype(np.float64) + y, "mul": x.astype(np.float64) * y, "real_div": x.astype(np.float64) / y}
    for name, want in exact.items():
        got = execute(lambda x, y, n=name: getattr(mb, n)(x=x, y=y), x=x, y=y)
        np.testing.assert_array_equal(got, want.astype(np.float16))


def assert_equal_fp16(got, want):
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.array(want, np.float16))


# --- states -----------------------------------------------------------------------------------------


def accumulate_into_state(x, cache):
    """cache += x; returns (cache before, 2 * cache after)."""
    before = mb.read_state(input=cache)
    after = mb.coreml_update_state(state=cache, value=mb.add(x=before, y=x))
    return before, mb.mul(x=after, y=np.float16(2))


def test_state_persists_across_calls_in_the_callers_array():
    x = np.full((2, 3), 1.5, np.float16)
    executor = ProgramExecutor.from_program(
        build_program(accumulate_into_state, {"x": x}, states={"cache": ((2, 3), types.fp16)})
    )
    state = executor.new_state()
    cache = state["cache"]
    assert cache.dtype == np.float16 and cache.shape == (2, 3) and not cache.any()
    before, doubled = executor.run("main", {"x": x}, state).values()
    np.testing.assert_array_equal(before, 0)  # read_state is a snapshot from before the update
    np.testing.assert_array_equal(doubled, 3.0)
    before, doubled = executor.run("main", {"x": x}, state).values()
    np.testing.assert_array_equal(before, 1.5)
    np.testing.assert_array_equal(doubled, 6.0)
    assert state["cache"] is cache  # updated in place, like an MLState
    np.testing.assert_array_equal(cache, 3.0)


def test_missing_or_malformed_state_is_rejected():
    x = np.ones((2, 3), np.float16)
    executor = ProgramExecutor.from_program(
        build_program(accumulate_into_state, {"x": x}, states={"cache": ((2, 3), types.fp16)})
    )
    with pytest.raises(ExecutorError, match="needs state 'cache'"):
        executor.run("main", {"x": x}, {})
    with pytest.raises(ExecutorError, match="must be a float16 array"):
        executor.run("main", {"x": x}, {"cache": np.zeros((2, 3), np.float32)})


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_op_is_refused_with_its_type_and_name():
    program = build_program(lambda x: mb.argsort(x=x, name="order"), {"x": rand(4)})
    with pytest.raises(UnsupportedOpError, match="'argsort'.*'order'") as raised:
        ProgramExecutor.from_program(program)
    assert isinstance(raised.value, ExportError)
    assert (raised.value.op_type, raised.value.op_name) == ("argsort", "order")


def test_inputs_are_checked_against_the_signature():
    x = rand(2, 3)
    executor = ProgramExecutor.from_program(build_program(lambda x: mb.relu(x=x), {"x": x}))
    assert [(s.name, s.shape, s.dtype) for s in executor.function_inputs("main")] == [("x", (2, 3), np.float32)]
    for bad, message in [
        ({}, "missing \\['x'\\]"),
        ({"x": x, "y": x}, "unknown \\['y'\\]"),
        ({"x": x.astype(np.float16)}, "must be float32, got float16"),
        ({"x": x[:1]}, "must have shape \\(2, 3\\)"),
        ({"x": x.tolist()}, "must be a NumPy array"),
    ]:
        with pytest.raises(ExecutorError, match=message):
            executor.run("main", bad, {})
    with pytest.raises(ExecutorError, match="no function 'decode'"):
        executor.run("decode", {"x": x}, {})


def test_gather_refuses_negative_indices_from_ios17():
    with pytest.raises(ExecutorError, match="out of bounds"):
        execute(lambda x, i: mb.gather(x=x, indices=i, axis=0), x=X, i=np.array([-1], np.int32))
    with pytest.raises(ExecutorError, match="out of bounds"):
        execute(lambda x, i: mb.gather(x=x, indices=i, axis=0), x=X, i=np.array([3], np.int32))


# --- compressed weights -----------------------------------------------------------------------------


def expand(build, opset=IOS18):
    """Run a program that only expands constants; returns (outputs, the program, the executor)."""
    program = build_program(build, {}, opset=opset)
    executor = ProgramExecutor.from_program(program)
    return list(executor.run("main", {}, {}).values()), program, executor


def materialized(program, op_type):
    """coremltools' own expansion of the (last) op of `op_type` in the program."""
    ops = [op for op in program.functions["main"].operations if op.op_type == op_type]
    return ops[-1].materialized_val_inference()


def test_blockwise_shift_scale_int4_with_offset():
    data = RNG.integers(-8, 8, size=(4, 64)).astype(types.np_int4_dtype)
    scale = rand(4, 2, low=0.01, high=0.1).astype(np.float16)
    offset = RNG.integers(-2, 2, size=(4, 2)).astype(types.np_int4_dtype)
    (got,), program, executor = expand(
        lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset)
    )
    blocks = lambda p: np.repeat(p.astype(np.float64), 32, axis=1)  # noqa: E731  (block size 64 / 2)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, (blocks(scale) * (data - blocks(offset))).astype(np.float16))
    np.testing.assert_array_equal(got, materialized(program, "constexpr_blockwise_shift_scale"))
    assert executor.stats.expanded_weights == 1


def test_blockwise_shift_scale_uint8_with_float_offset():
    data = RNG.integers(0, 256, size=(6, 4)).astype(np.uint8)
    scale, offset = rand(3, 1, low=0.01, high=0.1).astype(np.float16), rand(3, 1, low=100, high=150).astype(np.float16)
    (got,), program, _ = expand(lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset))
    want = np.repeat(scale.astype(np.float64), 2, 0) * (data - np.repeat(offset.astype(np.float64), 2, 0))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got, materialized(program, "constexpr_blockwise_shift_scale"), rtol=2e-3, atol=1e-3)


def test_lut_to_dense_grouped_palettes():
    indices = RNG.integers(0, 16, size=(8, 6)).astype(types.np_uint4_dtype)
    lut = rand(4, 1, 16, 1).astype(np.float16)  # 4 groups of 2 rows along axis 0, 16 entries each
    (got,), program, _ = expand(lambda: mb.constexpr_lut_to_dense(indices=indices, lut=lut))
    want = np.array([[lut[row // 2, 0, indices[row, col], 0] for col in range(6)] for row in range(8)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, materialized(program, "constexpr_lut_to_dense"))


@pytest.mark.parametrize("vector_axis", [0, -1])
def test_lut_to_dense_vector_entries(vector_axis):
    indices = RNG.integers(0, 4, size=(4, 3)).astype(types.np_uint2_dtype)
    lut = rand(1, 1, 4, 2).astype(np.float16)  # 2-element vectors
    (got,), program, _ = expand(
        lambda: mb.constexpr_lut_to_dense(indices=indices, lut=lut, vector_axis=np.int32(vector_axis))
    )
    vectors = lut[0, 0][indices]  # (4, 3, 2): each index's vector
    want = vectors.transpose(0, 2, 1).reshape(8, 3) if vector_axis == 0 else vectors.reshape(4, 6)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, materialized(program, "constexpr_lut_to_dense"))


def random_mask(shape):
    return (RNG.random(shape) > 0.5).astype(types.np_uint1_dtype)


def test_sparse_to_dense():
    mask = random_mask((4, 6))
    values = rand(int(mask.sum())).astype(np.float16)
    (got,), program, _ = expand(lambda: mb.constexpr_sparse_to_dense(nonzero_data=values, mask=mask))
    want = np.zeros((4, 6), np.float16)
    want[mask.astype(bool)] = values
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, materialized(program, "constexpr_sparse_to_dense"))


def test_lut_to_sparse_then_sparse_to_dense():
    mask = random_mask((4, 6))
    indices = RNG.integers(0, 4, size=int(mask.sum())).astype(types.np_uint2_dtype)
    lut = rand(1, 1, 4, 1).astype(np.float16)

    def build():
        out_mask, values = mb.constexpr_lut_to_sparse(indices_mask=mask, indices_nonzero_data=indices, lut=lut)
        return mb.constexpr_sparse_to_dense(nonzero_data=values, mask=out_mask)

    (got,), program, _ = expand(build)
    want = np.zeros((4, 6), np.float16)
    want[mask.astype(bool)] = lut[0, 0, indices, 0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, materialized(program, "constexpr_sparse_to_dense"))


def test_sparse_blockwise_shift_scale_then_sparse_to_dense():
    mask = random_mask((4, 8))
    data = RNG.integers(-128, 128, size=int(mask.sum())).astype(np.int8)
    scale, offset = rand(4, 1, low=0.01, high=0.1).astype(np.float16), RNG.integers(-3, 3, size=(4, 1)).astype(np.int8)

    def build():
        out_mask, values = mb.constexpr_sparse_blockwise_shift_scale(
            data_mask=mask, nonzero_data=data, scale=scale, offset=offset
        )
        return mb.constexpr_sparse_to_dense(nonzero_data=values, mask=out_mask)

    (got,), program, _ = expand(build)
    dense = np.zeros((4, 8))
    dense[mask.astype(bool)] = data
    want = np.where(mask, scale.astype(np.float64) * (dense - offset), 0).astype(np.float16)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, materialized(program, "constexpr_sparse_to_dense"), rtol=1e-3)


def test_constexpr_cast():
    source = rand(3, 2).astype(np.float16)
    (got,), _, _ = expand(lambda: mb.constexpr_cast(source_val=source, output_dtype="fp32"))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, source.astype(np.float32))


def test_ios16_compressed_weight_ops():
    quantized = RNG.integers(0, 256, size=(3, 4)).astype(np.uint8)
    zero_point, scale = np.array([128, 120, 100], np.uint8), rand(3, low=0.01, high=0.1).astype(np.float16)
    lut, lut_indices = rand(4).astype(np.float16), RNG.integers(0, 4, size=15)
    packed_indices = np.packbits(((lut_indices[:, None] >> np.arange(2)) & 1).reshape(-1), bitorder="little")
    dense = rand(3, 5).astype(np.float16) * (RNG.random((3, 5)) > 0.5)
    packed_mask = np.packbits((dense != 0).reshape(-1), bitorder="little")

    def build():
        return [
            mb.constexpr_affine_dequantize(quantized_data=quantized, zero_point=zero_point, scale=scale, axis=0),
            mb.constexpr_lut_to_dense(indices=packed_indices, lut=lut, shape=np.array([3, 5], np.uint32)),
            mb.constexpr_sparse_to_dense(
                nonzero_data=dense[dense != 0], mask=packed_mask, shape=np.array([3, 5], np.uint32)
            ),
            mb.constexpr_cast(source_val=scale, output_dtype="fp32"),
        ]

    (affine, palettized, sparse, widened), program, _ = expand(build, opset=IOS16)
    want_affine = scale[:, None].astype(np.float64) * (quantized.astype(np.float64) - zero_point[:, None])
    np.testing.assert_allclose(affine, want_affine, rtol=1e-3)
    np.testing.assert_allclose(affine, materialized(program, "constexpr_affine_dequantize"), rtol=1e-3)
    np.testing.assert_array_equal(palettized, lut[lut_indices].reshape(3, 5))
    np.testing.assert_array_equal(sparse, dense)
    np.testing.assert_array_equal(widened, scale.astype(np.float32))


def test_one_weight_shared_by_two_functions_is_expanded_once():
    data = RNG.integers(-8, 8, size=(4, 64)).astype(types.np_int4_dtype)
    scale = rand(4, 2, low=0.01, high=0.1).astype(np.float16)
    program = Program()
    for name in ("prefill", "decode"):
        with Function({"x": mb.placeholder(shape=(1, 64), dtype=types.fp16)}, opset_version=IOS18) as function:
            weight = mb.constexpr_blockwise_shift_scale(data=data.copy(), scale=scale.copy())
            function.set_outputs([mb.linear(x=function.inputs["x"], weight=weight)])
        program.add_function(name, function)
    executor = ProgramExecutor.from_program(program)
    assert executor.stats.expanded_weights == 1
    x = {"x": rand(1, 64).astype(np.float16)}
    (prefill,), (decode,) = (executor.run(name, x, {}).values() for name in ("prefill", "decode"))
    np.testing.assert_array_equal(prefill, decode)


def _palettize(cto, model, joint=False, **config):
    op_config = cto.OpPalettizerConfig(**config)
    return cto.palettize_weights(model, cto.OptimizationConfig(op_config), joint_compression=joint)


def _quantize(cto, model, joint=False, **config):
    op_config = cto.OpLinearQuantizerConfig(**config)
    return cto.linear_quantize_weights(model, cto.OptimizationConfig(op_config), joint_compression=joint)


def _prune(cto, model):
    return cto.prune_weights(model, cto.OptimizationConfig(cto.OpMagnitudePrunerConfig(target_sparsity=0.5)))


# name -> ((coremltools.optimize.coreml, mlmodel) -> compressed mlmodel, the constexpr ops it must produce)
COMPRESSIONS = {
    "palettize_4bit_grouped_channel_scaled": (
        lambda cto, m: _palettize(cto, m, nbits=4, mode="kmeans", granularity="per_grouped_channel", group_size=16,
                                  enable_per_channel_scale=True),
        {"constexpr_lut_to_dense", "constexpr_blockwise_shift_scale"},
    ),
    "palettize_2bit_vector": (
        lambda cto, m: _palettize(cto, m, nbits=2, mode="kmeans", cluster_dim=2), {"constexpr_lut_to_dense"}),
    "int4_asymmetric_per_block": (
        lambda cto, m: _quantize(cto, m, mode="linear", dtype="uint4", granularity="per_block", block_size=32),
        {"constexpr_blockwise_shift_scale"},
    ),
    "int8_per_channel": (
        lambda cto, m: _quantize(cto, m, mode="linear_symmetric", dtype="int8"), {"constexpr_blockwise_shift_scale"}),
    "prune": (_prune, {"constexpr_sparse_to_dense"}),
    "prune_then_palettize": (
        lambda cto, m: _palettize(cto, _prune(cto, m), joint=True, nbits=2, mode="kmeans"),
        {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"},
    ),
    "prune_then_quantize": (
        lambda cto, m: _quantize(cto, _prune(cto, m), joint=True, mode="linear_symmetric", dtype="int8"),
        {"constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense"},
    ),
}


@pytest.fixture(scope="module")
def dense_linear_model():
    """A saved-format Core ML model: x [1, 64] -> linear (96 x 64) -> relu -> linear (32 x 96), float16."""
    weights = (rand(96, 64) * 0.2, rand(32, 96) * 0.2)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=IOS18)
    def program(x):
        hidden = mb.relu(x=mb.linear(x=x, weight=weights[0]))
        return mb.linear(x=hidden, weight=weights[1])

    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=IOS18, skip_model_load=True)


@pytest.mark.parametrize("recipe", sorted(COMPRESSIONS))
def test_coremltools_compressed_package_matches_its_decompressed_weights(recipe, dense_linear_model, tmp_path):
    import coremltools.optimize.coreml as cto

    compress, expected_ops = COMPRESSIONS[recipe]
    compressed = compress(cto, dense_linear_model)
    compressed.save(str(tmp_path / "compressed.mlpackage"))
    saved_ops = {op.op_type for op in load_program(tmp_path / "compressed.mlpackage").functions["main"].operations}
    assert expected_ops <= saved_ops
    executor = ProgramExecutor(tmp_path / "compressed.mlpackage")  # through the saved format: sub-byte types, blobs
    assert executor.stats.expanded_weights >= 2
    reference = ProgramExecutor.from_program(cto.decompress_weights(compressed)._mil_program)
    assert reference.stats.expanded_weights == 0
    (signature,) = executor.function_inputs("main")
    x = {signature.name: rand(1, 64).astype(signature.dtype)}
    got = executor.run("main", x, {})
    want = reference.run("main", x, {})
    for key in want:
        np.testing.assert_allclose(got[key].astype(np.float32), want[key].astype(np.float32), rtol=2e-3, atol=2e-3)


def test_layer_norm_overflows_where_float16_squares_would():
    """The kernel is pessimistic: where the squares (or their sum) pass float16's 65504 the result is destroyed
    (x / inf = 0), so a layer_norm chosen where the activations are too large fails verification instead of
    passing on float32 arithmetic the device may not have."""
    def normalized(x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)

    for scale, destroyed in ((10, False), (1000, True)):
        x = rand(1, 8) * scale
        got = execute(lambda x: mb.layer_norm(x=x, axes=[-1], epsilon=np.float32(1e-5)), x=x)
        assert (np.abs(got - normalized(x)).max() > 0.5) == destroyed, scale
