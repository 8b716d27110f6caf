"""The calling contract of an exported model, the same for every backend: functions, inputs, outputs, states."""

FUNCTIONS = ("prefill", "decode")  # prefill: prefill_length tokens per call; decode: one
EMBED_FUNCTIONS = ("embed_prefill", "embed_decode")  # the ane target's token lookup, first chunk only
VERIFY, EMBED_VERIFY = "verify", "embed_verify"  # speculative decoding: draft tokens + 1 per call, logits per row
DEFAULT_DRAFT_TOKENS = 4  # verify takes 5 tokens: the newest one and 4 drafted after it
DEFAULT_FUNCTION = "decode"
INPUT_IDS, POSITION, LOGITS = "input_ids", "position", "logits"
HIDDEN_IN, HIDDEN_OUT = "hidden_in", "hidden_out"  # between the packages of a split model (ane: after embed too)
ROTARY, MASK = "rotary", "mask"  # the ane target: computed by the caller (exporter.graph.host_inputs)
STATE_NAMES = ("key_cache", "value_cache")
DEFAULT_PREFILL_LENGTH = 64
ANE, GPU = "ane", "gpu"
TARGETS = (ANE, GPU)
DEFAULT_TARGET = ANE
