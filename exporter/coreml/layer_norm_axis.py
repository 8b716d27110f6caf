"""A MIL pass: transpose → layer_norm over the last axis → the same transpose, as one layer_norm over the moved axis.

torch normalizes only trailing axes, so the Neural Engine graph's RMSNorm in layer-norm form
(exporter.graph.ane_blocks.ChannelNorm) is traced as a transpose pair around F.layer_norm; MIL's
layer_norm takes any axes, so the pair goes (ANE rule: transposes that touch the width dimension
rewrite the whole tensor in memory; prefer high-level ops).
"""

from __future__ import annotations


def swapped_axis(perm: list[int]) -> int | None:
    """The axis a transpose swaps with the last one, when that is all it does."""
    last = len(perm) - 1
    moved = [i for i, p in enumerate(perm) if p != i]
    if len(moved) == 2 and moved[1] == last and perm[moved[0]] == last and perm[last] == moved[0]:
        return moved[0]
    return None


def fold_layer_norm_transposes(program) -> int:
    """Rewrite every transpose/layer_norm/transpose triple in `program`; returns how many were folded."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.scope import ScopeInfo

    folded = 0
    for function in program.functions.values():
        for op in list(function.operations):
            triple = _triple(op)
            if triple is None:
                continue
            before, after, axis = triple
            # The new op keeps the replaced op's scopes (a saved program requires its torch module name).
            scopes = [ScopeInfo(source=source, data=list(data)) for source, data in op.scopes.items()]
            with mb.scope(*scopes), function:
                kwargs = {"x": before.x, "axes": [axis], "epsilon": op.epsilon, "before_op": after,
                          "name": after.outputs[0].name}
                kwargs.update({k: getattr(op, k) for k in ("gamma", "beta") if getattr(op, k) is not None})
                normed = mb.layer_norm(**kwargs)
            function.replace_uses_of_var_after_op(anchor_op=after, old_var=after.outputs[0], new_var=normed)
            function.remove_ops([after, op, before])
            folded += 1
    return folded


def _triple(op):
    """(first transpose, second transpose, axis) when `op` is a layer_norm over the last axis between two equal
    swaps of that axis, each used only there; else None."""
    if op.op_type != "layer_norm" or op.x.op is None or op.x.op.op_type != "transpose":
        return None
    before, users = op.x.op, op.outputs[0].child_ops
    rank = op.x.rank
    if len(users) != 1 or users[0].op_type != "transpose" or len(before.outputs[0].child_ops) != 1:
        return None
    after = users[0]
    perm, perm_after = ([int(p) % rank for p in t.perm.val] for t in (before, after))
    axes = [int(a) % rank for a in op.axes.val]
    axis = swapped_axis(perm)
    if axis is None or perm != perm_after or axes != [rank - 1] or after.outputs[0] in op.enclosing_block.outputs:
        return None
    return before, after, axis
