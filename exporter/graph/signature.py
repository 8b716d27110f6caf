"""The calling contract of an exported model, the same for every backend: functions, inputs, outputs, states."""

FUNCTIONS = ("prefill", "decode")  # prefill: prefill_length tokens per call; decode: one
DEFAULT_FUNCTION = "decode"
INPUT_IDS, POSITION, LOGITS = "input_ids", "position", "logits"
HIDDEN_IN, HIDDEN_OUT = "hidden_in", "hidden_out"  # between the packages of a split model
STATE_NAMES = ("key_cache", "value_cache")
DEFAULT_PREFILL_LENGTH = 64
