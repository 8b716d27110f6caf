"""One job per module: no module over about 400 lines, no function over about 60 (templates aside)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
TEMPLATES = {"exporter/tools/tiny/card.py:write_card"}  # the model card's text, one f-string


def sources():
    for package in ("exporter", "quant"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_60_lines():
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(ROOT)}:{node.name}"
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and where not in TEMPLATES:
                    long[where] = node.end_lineno - node.lineno + 1
    assert long == {}
