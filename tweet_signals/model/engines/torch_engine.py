"""The torch engines: a Hugging Face (or plain) classifier run as fp32, bf16 or dynamic int8,
Imported only by workers that run torch (or export an ONNX graph once), so an ONNX Runtime
worker never pays torch's import and memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from tweet_signals.model.base import LogitsFn


class LogitsModule(torch.nn.Module):
    """Adapts a Hugging Face classifier (``.logits``) or a plain one to (ids, mask) → logits."""

    def __init__(self, module: torch.nn.Module, hf_output: bool) -> None:
        super().__init__()
        self.module = module
        self.hf_output = hf_output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.module(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits if self.hf_output else out


class TorchLogits:
    """A torch classifier as a ``logits_fn`` (one batch) and a ``stream`` (many batches).

    On a GPU the stream keeps several batches in flight: inputs go through pinned memory with
    non-blocking copies, logits come back the same way, and the host only waits for a batch
    ``depth`` batches later, so padding the next batch overlaps the model running this one.
    """

    def __init__(self, module: torch.nn.Module, device: str, hf_output: bool, dtype: torch.dtype | None = None):
        wrapped = LogitsModule(module, hf_output).eval()
        if dtype is not None:
            wrapped = wrapped.to(dtype)  # weights themselves in bf16, not autocast around fp32 weights
        self.module = wrapped.to(device)
        self.device = device
        # CUDA kernels are queued and run while the host goes on (see ``stream``).
        self.asynchronous = device.startswith("cuda")

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.startswith("cuda"):  # page-locked, so the copy can run asynchronously
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(self._to_device(input_ids), self._to_device(mask)).float().cpu().numpy()

    def stream(self, batches: Iterable[tuple[np.ndarray, np.ndarray]], depth: int = 3) -> Iterator[np.ndarray]:
        """Logits of each batch, in order."""
        if not self.device.startswith("cuda"):
            yield from (self(ids, mask) for ids, mask in batches)
            return
        in_flight: deque[tuple[torch.Tensor, torch.cuda.Event]] = deque()
        with torch.inference_mode():
            for ids, mask in batches:
                logits = self.module(self._to_device(ids), self._to_device(mask)).float()
                host = torch.empty(logits.shape, dtype=torch.float32, pin_memory=True)
                host.copy_(logits, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                in_flight.append((host, done))
                if len(in_flight) > depth:
                    yield _wait(in_flight.popleft())
            while in_flight:
                yield _wait(in_flight.popleft())


def _wait(item: tuple[torch.Tensor, torch.cuda.Event]) -> np.ndarray:
    host, done = item
    done.synchronize()
    return host.numpy()


def torch_logits(module: torch.nn.Module, device: str, hf_output: bool, dtype: torch.dtype | None = None) -> LogitsFn:
    return TorchLogits(module, device, hf_output, dtype)


def torch_int8_logits(module: torch.nn.Module, hf_output: bool) -> LogitsFn:
    """Dynamic int8 quantisation of every linear layer (CPU only)."""
    quantized = torch.ao.quantization.quantize_dynamic(
        LogitsModule(module, hf_output).eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    return torch_logits(quantized, "cpu", hf_output=False)
