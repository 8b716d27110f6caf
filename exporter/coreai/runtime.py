"""Apple's Core AI runtime, driven like our Core ML executor: `new_state()` and `run(function, inputs, state)`.

On Linux `coreai-core`'s wheel carries the runtime itself (a CPU reference: right, and slow); on
macOS 27 it uses the OS framework. Its API is async; verification drives it call by call, so each
model owns an event loop and runs one call at a time on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
from pathlib import Path

import numpy as np

from exporter.errors import ExportError
from exporter.graph.signature import FUNCTIONS

COREAI_FIX = "install the pinned Core AI packages with `make install` (or pip install -e .)"


def require_coreai(module: str = "coreai"):
    """Import a Core AI package, or say in one line what is missing and how to fix it."""
    # coreai-opt's exact k-means compiles its C++ helper on first use with the ninja the venv installs.
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(f"Core AI support needs {module.replace('_', '-')}, which cannot be imported "
                          f"({str(e).splitlines()[0]}); {COREAI_FIX}") from None


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 pointed at /dev/null for the block (native code writes there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class CoreAIModel:
    """One `.aimodel` loaded in Apple's runtime, its functions and states; use as a context manager."""

    def __init__(self, path: Path):
        require_coreai("coreai.runtime")
        from coreai.authoring import AIModelAsset

        self.path = Path(path)
        self.loop = asyncio.new_event_loop()
        try:
            self.asset = AIModelAsset.load(str(self.path))
            self._context = self.asset.executable()
            self.model = self.loop.run_until_complete(self._context.__aenter__())
        except RuntimeError as e:
            self.loop.close()
            raise ExportError(f"{self.path}: Apple's Core AI runtime cannot load it ({str(e).splitlines()[0]}); "
                              "re-export it") from None
        missing = [f for f in FUNCTIONS if f not in self.model.function_names]
        if missing:
            self.close()
            raise ExportError(f"{self.path}: no function {', '.join(missing)} (it has "
                              f"{', '.join(self.model.function_names)}); was it written by elm-export?")
        # Every function (the ane target's first chunk adds embed_prefill and embed_decode).
        with native_stderr_silenced():  # the runtime logs "Loading function ..." to the process's stderr
            self.functions = {name: self.model.load_function(name) for name in self.model.function_names}

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.run_until_complete(self._context.__aexit__(None, None, None))
            self.loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def new_state(self, shapes: dict[str, tuple]) -> dict:
        """Zeroed states; the runtime updates these arrays in place on every call, for both functions."""
        from coreai.runtime import NDArray

        return {name: NDArray(np.zeros(shape, np.float16)) for name, shape in shapes.items()}

    def run(self, function: str, inputs: dict, state: dict) -> dict:
        from coreai.runtime import NDArray

        arrays = {name: NDArray(np.ascontiguousarray(value)) for name, value in inputs.items()}
        call = self.functions[function](arrays, state=state) if state else self.functions[function](arrays)
        outputs = self.loop.run_until_complete(call)
        return {name: value.numpy() for name, value in outputs.items()}


class CoreAIExecutor:
    """A Core AI export's chunk as verification drives it (exporter.verify.drive): states shaped as export.json
    declares them."""

    def __init__(self, path: Path, chunk: dict):
        self.model = CoreAIModel(path)
        self.shapes = {state["name"]: tuple(state["shape"]) for state in chunk["states"]}

    def new_state(self) -> dict:
        return self.model.new_state(self.shapes)

    def run(self, function: str, inputs: dict, state: dict) -> dict:
        return self.model.run(function, inputs, state)

    def close(self) -> None:
        self.model.close()
