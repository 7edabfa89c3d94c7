"""The compiled bf16 engine (``torch-bf16-compiled``): the model ahead-of-time compiled by
TorchInductor into one shared library of fused CPU kernels, built once per model revision and
reused by every later worker.

Why ahead of time: ``torch.compile`` in each worker re-traces the model in every new process
(12 s for MiniLM on 2 cores even with Inductor's on-disk cache warm), while a library compiled by
AOTInductor loads in about 20 ms. The model is exported with a symbolic batch size and sequence
length, so one library serves every batch shape the analyzer's length buckets produce; weights
are frozen into it, which lets Inductor pre-pack them for the CPU's bf16 matrix units.

The library is keyed by the model revision (its cache directory), torch's version, the CPU's
instruction-set flags (the code is compiled for this CPU) and the export options. A failed build
is recorded beside it, so later workers fall back to eager bf16 at once instead of compiling
again; ``--engine auto`` only takes this engine after it passed the same fidelity gate as any other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweet_signals.model.base import LogitsFn
from tweet_signals.model.engines.cpu import cpu_flags

if TYPE_CHECKING:
    import torch

COMPILED = "torch-bf16-compiled"
# Symbolic batch-size bound of the export; lengths run from 2 (CLS + SEP) to the analyzer's
# ``max_length`` (a model's position table may hold no more: the tiny test RoBERTa has 140).
MAX_BATCH = 65_536
# Frozen weights, and Inductor's C++ GEMM templates tried against ATen's for each matrix product:
# on MiniLM over 2,000 tweets (2-core Xeon with AMX) the bare model ran 1.16x eager bf16 with the
# templates and 1.06x without; they double the one-off build (29 s against 15 s).
INDUCTOR_OPTIONS: dict[str, object] = {
    "freezing": True,
    "max_autotune": True,
    "max_autotune_gemm_backends": "CPP,ATEN",
}

_WORK_PREFIX = "tweet-signals-aoti-"  # a build's work folder, beside the library

log = logging.getLogger(__name__)


class CompileUnavailableError(RuntimeError):
    """This machine cannot build (or load) the compiled model; eager bf16 runs instead."""


def _cpu_identity() -> str:
    """What the compiled code depends on: the CPU's flags (its processor name where none are known)."""
    import platform

    return " ".join(sorted(cpu_flags())) or platform.processor() or platform.machine()


def library_path(target: Path, max_tokens: int) -> Path:
    """Where the library compiled for this torch version, CPU and length bound lives in a model's
    cache directory."""
    options = {
        "torch": metadata.version("torch").split("+")[0],
        "cpu": hashlib.sha256(_cpu_identity().encode()).hexdigest()[:12],
        "dtype": "bf16",
        "inductor": INDUCTOR_OPTIONS,
        "max_batch": MAX_BATCH,
        "max_tokens": max_tokens,
    }
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    return target / f"compiled-bf16-cpu-{key}.so"


def _failure_path(library: Path) -> Path:
    return library.with_suffix(".failed.json")


def compiled_library(
    load_module: Callable[[], torch.nn.Module], hf_output: bool, target: Path, max_tokens: int
) -> Path:
    """The model's compiled library, built first when it is missing (tens of seconds on 2 cores).

    Raises ``CompileUnavailableError`` when the build fails here (no C++ compiler, an operator
    Inductor cannot export) and records why, so later calls fail at once."""
    from filelock import FileLock

    library = library_path(target, max_tokens)
    if library.is_file():
        return library
    target.mkdir(parents=True, exist_ok=True)
    # One build per machine: workers starting together wait for the first one's library.
    with FileLock(str(library.with_suffix(".lock"))):
        if library.is_file():
            return library
        failure = _failure_path(library)
        if failure.is_file():
            raise CompileUnavailableError(json.loads(failure.read_text()).get("error", "compile failed before"))
        # Under the lock no other build runs here: work folders and partial files are a killed build's.
        for stale in target.glob(f"{_WORK_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in target.glob(f".{library.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        try:
            built = _build(load_module, hf_output, library, max_tokens)
        except Exception as exc:  # torch.export and Inductor raise many kinds; all mean "not here"
            message = f"{type(exc).__name__}: {str(exc)[:2000]}"
            failure.write_text(json.dumps({"error": message}))
            raise CompileUnavailableError(message) from exc
        built.replace(library)  # atomic: a reader sees either no library or a whole one
    return library


def _build(load_module: Callable[[], torch.nn.Module], hf_output: bool, library: Path, max_tokens: int) -> Path:
    """Export with a symbolic (batch, length), compile with AOTInductor, and take the shared
    library out of the package, next to ``library`` under a temporary name."""
    import torch
    import torch._inductor

    from tweet_signals.model.engines.torch_engine import LogitsModule

    module = LogitsModule(load_module(), hf_output).eval().to(torch.bfloat16)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    tokens = torch.export.Dim("tokens", min=2, max=max(max_tokens, 3))
    example = (torch.ones((4, 16), dtype=torch.long), torch.ones((4, 16), dtype=torch.long))
    with torch.no_grad():
        exported = torch.export.export(
            module, example, dynamic_shapes=({0: batch, 1: tokens}, {0: batch, 1: tokens}), strict=False
        )
    with tempfile.TemporaryDirectory(prefix=_WORK_PREFIX, dir=library.parent) as work:
        package = Path(work) / "model.pt2"
        # A copy: Inductor adds its own keys to the dict it is given, and ``library_path`` hashes
        # these options, so passing ours would rename the library this process looks for next.
        torch._inductor.aoti_compile_and_package(
            exported, package_path=str(package), inductor_configs=dict(INDUCTOR_OPTIONS)
        )
        with zipfile.ZipFile(package) as archive:
            libraries = [n for n in archive.namelist() if n.endswith(".so")]
            if len(libraries) != 1:
                raise RuntimeError(f"expected one shared library in the AOTInductor package, found {libraries}")
            tmp = library.with_name(f".{library.name}.{os.getpid()}.tmp")
            with archive.open(libraries[0]) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return tmp


class CompiledLogits:
    """A compiled library as a ``logits_fn``: padded int64 ids and mask in, fp32 logits out."""

    def __init__(self, library: Path) -> None:
        import torch

        # The runner AOTInductor's own loaders use for a CPU library; loading the library file
        # directly takes ~20 ms, where ``aoti_load_package`` unpacks the 47 MB package each time.
        self.runner: Any = torch._C._aoti.AOTIModelContainerRunnerCpu(str(library), 1)
        # Kernels built for AMX tiles (Sapphire Rapids and later) fault with an illegal
        # instruction until the process has asked the kernel for AMX state, which Inductor does
        # when it compiles but a worker that only loads the library must do itself.
        if torch.cpu._is_amx_tile_supported():
            torch.cpu._init_amx()
        self.library = library

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            (logits,) = self.runner.run([torch.from_numpy(input_ids), torch.from_numpy(mask)])
        return logits.float().numpy()


def compiled_logits(
    load_module: Callable[[], torch.nn.Module], hf_output: bool, target: Path, device: str, max_tokens: int
) -> LogitsFn:
    """The compiled engine, or eager bf16 (with a warning) where it cannot be built or loaded."""
    from tweet_signals.model.engines.torch_engine import torch_logits

    if device != "cpu":
        raise ValueError(f"{COMPILED} runs on the CPU only; use torch-bf16 on {device}")
    try:
        return CompiledLogits(compiled_library(load_module, hf_output, target, max_tokens))
    except (CompileUnavailableError, RuntimeError, AttributeError, OSError) as exc:
        log.warning("%s unavailable, running eager torch-bf16 instead: %s", COMPILED, exc)
        import torch

        return torch_logits(load_module(), "cpu", hf_output, torch.bfloat16)
