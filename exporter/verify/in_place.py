"""Which slice_update ops of a compiled function may write into their input instead of a copy of it.

The KV cache is one state of all layers ([1, kv heads, context, head_dim], up to 67 MB for OpenELM-3B):
each layer's slice_update copied all of it to change one position per decode call, ~25 ms a layer.
An update may write into its input when nothing can see the old contents afterwards: the input is read
by no later op, no value still to be read shares its memory, and a state that holds it is replaced
before anything reads that state again (at the end of a call states are read: copied to the caller).
The caller's state arrays may so change during a call, not only at its end: a call that fails can leave
a state half updated.
Values share memory when an op returns a view (reshape, slicing, a state's value): unless an op type
is known to return new arrays (FRESH) or views of its input x alone (VIEWS_OF_X), its outputs are taken
to share memory with all its inputs.
"""

from __future__ import annotations

from exporter.verify.kernels.shapes import slice_update_in_place
from exporter.verify.program_plan import CONST, STATE, TUPLE, VAR, Binding, FunctionPlan, Step, var_names

# Kernels whose outputs may share memory with their input x only (views; slice_update in place).
VIEWS_OF_X = frozenset({"reshape", "transpose", "expand_dims", "squeeze", "slice_by_index", "slice_by_size", "split",
                        "identity", "slice_update"})
# Kernels whose outputs never share memory with their inputs.
FRESH = frozenset({
    "add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "abs", "square", "exp", "sqrt", "rsqrt",
    "inverse", "log", "sigmoid", "silu", "relu", "gelu", "softmax", "linear", "matmul", "conv", "layer_norm",
    "scaled_dot_product_attention", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "concat", "stack",
    "gather", "select", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
    "logical_or", "logical_not",
})


def storage_of(binding: Binding, memory: dict, states: dict) -> frozenset:
    """What memory a bound value may share: the producers' outputs, states, inputs and constants."""
    kind, payload = binding
    if kind == VAR:
        return memory.get(payload, frozenset({("input", payload)}))
    if kind == STATE:
        return states.get(payload, frozenset({("state", payload)}))
    if kind == CONST:
        return frozenset({("const", id(payload))})
    if kind == TUPLE:
        return frozenset().union(*(storage_of(inner, memory, states) for inner in payload))
    return frozenset()


def trace_memory(steps: list[Step]) -> tuple[dict, dict, list[dict]]:
    """(var -> memory it may share, var -> index of the step computing it, state -> memory before each step)."""
    memory, produced, states, states_before = {}, {}, {}, []
    for index, step in enumerate(steps):
        states_before.append(dict(states))
        shared = {key: storage_of(b, memory, states) for key, b in step.args.items()}
        if step.op.op_type == "read_state":
            found = shared["input"]
        elif step.op.op_type == "coreml_update_state":
            found = states[step.args["state"][1]] = shared["value"]
        elif step.op.op_type in FRESH:
            found = frozenset()
        elif step.op.op_type in VIEWS_OF_X and "x" in shared:
            found = shared["x"]
        else:
            found = frozenset().union(*shared.values())
        for name, _, _ in step.outputs:
            memory[name], produced[name] = found | {("value", name)}, index
    return memory, produced, states_before


def state_accesses(steps: list[Step]) -> dict[str, list[tuple[int, bool]]]:
    """state -> [(step index, whether the step replaces the state)], in order."""
    accesses: dict[str, list[tuple[int, bool]]] = {}
    for index, step in enumerate(steps):
        for b in step.args.values():
            if b[0] == STATE:
                accesses.setdefault(b[1], []).append((index, step.op.op_type == "coreml_update_state"))
    return accesses


def mark_in_place_updates(plan: FunctionPlan) -> int:
    """Give the slice_update steps that may write into their input the in-place kernel; how many."""
    steps = plan.steps
    kept = {name for _, b in plan.outputs for name in var_names(b)}  # read after the last step
    memory, produced, states_before = trace_memory(steps)
    accesses = state_accesses(steps)
    last_use = {name: index for index, step in enumerate(steps) for name in step.free_after}
    marked = 0
    for index, step in enumerate(steps):
        target = step.args.get("x")
        if step.op.op_type != "slice_update" or target is None or target[0] != VAR:
            continue
        name = target[1]
        if name not in memory or name in kept or last_use.get(name) != index:
            continue  # read by a later op, or a value the caller gave
        shared = memory[name]
        if any(kind in ("const", "input") for kind, _ in shared):
            continue  # the program's constants and the caller's inputs are never written
        alive = [m for other, m in memory.items() if other != name and produced[other] < index
                 and (other in kept or last_use.get(other, -1) > index)]
        holders = [state for state in accesses
                   if states_before[index].get(state, frozenset({("state", state)})) & shared]
        if not any(m & shared for m in alive) and all(replaced_next(accesses[state], index) for state in holders):
            step.kernel = slice_update_in_place
            marked += 1
    return marked


def replaced_next(accesses: list[tuple[int, bool]], index: int) -> bool:
    """Whether the first access to a state after step `index` replaces it (no access: the caller reads it)."""
    later = [replaces for at, replaces in accesses if at > index]
    return bool(later) and later[0]
