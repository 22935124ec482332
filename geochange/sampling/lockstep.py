"""Several paintings side by side, their model calls batched: how dataset pairs fill a GPU.

Each painting runs in a thread of its own with a stand-in for the model (``Member``). A call
to it waits until every painting still running waits on one too; then the calls of the same
kind and shapes run as one batch (in the paintings' order) and every painting goes on. Which
calls share a batch therefore depends on the paintings alone, never on timing, so a group of
paintings gives the same pixels run after run. It is not the same float arithmetic as one
painting at a time, though: a batch's sums may differ in the last bits (measured on the CPU:
up to 6.6e-7 for the UNet), so outputs are reproducible for a given group, not across group
sizes.

The paintings' own work between calls (exemplars, composition, events) runs in the threads
too; numpy and torch release the GIL for most of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

Result = TypeVar("Result")


@dataclass(eq=False)
class _Call:
    kind: str
    tensors: tuple[torch.Tensor, ...]
    option: Hashable
    done: bool = False
    output: torch.Tensor | None = None
    error: BaseException | None = None

    def key(self) -> tuple:
        """Calls with equal keys can share a batch: same kind, option and per-sample shapes."""
        shapes = tuple((t.shape[1:], t.dtype, t.device) for t in self.tensors)
        return (self.kind, self.option, shapes)


class Lockstep(Generic[Result]):
    """Runs paintings in threads with their model calls batched (module docstring).

    ``model`` has ``encode(images)``, ``decode(latents)`` and ``denoise(z_t, t, mask_onehot,
    guidance_scale)`` taking a batch; ``context`` is entered around every batched call (the
    calling thread's own ``no_grad`` or autocast would not do: it may be any painting's).
    """

    def __init__(self, model: Any, context: Callable[[], Any] = torch.no_grad) -> None:
        self.model = model
        self.context = context
        self.model_s = 0.0
        """Seconds spent in batched model calls."""
        self.calls = 0
        """Batched model calls made."""
        self._ready = threading.Condition()
        self._waiting: dict[int, _Call] = {}
        self._running = 0

    def run(self, paintings: Sequence[Callable[[Member], Result]]) -> list[Result]:
        """Each ``painting(member)`` in its own thread; their results in order. The first
        error (in the paintings' order) is raised once every painting has ended."""
        results: list[Any] = [None] * len(paintings)
        errors: list[BaseException | None] = [None] * len(paintings)

        def work(slot: int) -> None:
            try:
                results[slot] = paintings[slot](Member(self, slot))
            except BaseException as error:  # handed to the caller below
                errors[slot] = error
            finally:
                self._leave()

        self._running = len(paintings)
        threads = [
            threading.Thread(target=work, args=(slot,), daemon=True, name=f"painting-{slot}")
            for slot in range(len(paintings))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        return results

    def call(self, slot: int, kind: str, tensors: tuple[torch.Tensor, ...], option: Hashable):
        """Painting ``slot``'s model call; returns its share of the batch it ran in."""
        request = _Call(kind, tensors, option)
        with self._ready:
            self._waiting[slot] = request
            self._flush_when_all_wait()
            while not request.done:
                self._ready.wait()
        if request.error is not None:
            raise request.error
        return request.output

    def _leave(self) -> None:
        with self._ready:
            self._running -= 1
            self._flush_when_all_wait()

    def _flush_when_all_wait(self) -> None:
        """Run the waiting calls once every running painting waits; the lock is held."""
        if not self._waiting or len(self._waiting) < self._running:
            return
        groups: dict[tuple, list[_Call]] = {}
        for slot in sorted(self._waiting):
            request = self._waiting[slot]
            groups.setdefault(request.key(), []).append(request)
        self._waiting.clear()
        for requests in groups.values():
            try:
                outputs = self._batched(requests)
                for request, output in zip(requests, outputs, strict=True):
                    request.output = output
            except BaseException as error:  # each painting raises it from its own call
                for request in requests:
                    request.error = error
        for group in groups.values():
            for request in group:
                request.done = True
        self._ready.notify_all()

    def _batched(self, requests: list[_Call]) -> list[torch.Tensor]:
        """One model call on the requests' tensors stacked; split back per request."""
        first = requests[0]
        stacked = [torch.cat(parts) for parts in zip(*(r.tensors for r in requests), strict=True)]
        tic = time.perf_counter()
        with self.context():
            if first.kind == "denoise":
                output = self.model.denoise(*stacked, first.option)
            else:
                output = getattr(self.model, first.kind)(*stacked)
        self.model_s += time.perf_counter() - tic
        self.calls += 1
        return list(output.split([r.tensors[0].shape[0] for r in requests]))


class Member:
    """One painting's stand-in for the model: ``encode``, ``decode`` and ``denoise`` wait for
    their batch; everything else (config, layout statistics, scheduler) is the model's."""

    def __init__(self, lockstep: Lockstep, slot: int) -> None:
        self._lockstep = lockstep
        self._slot = slot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lockstep.model, name)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._lockstep.call(self._slot, "encode", (images,), None)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._lockstep.call(self._slot, "decode", (latents,), None)

    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor | int,
        mask_onehot: torch.Tensor,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        steps = torch.as_tensor(t, device=z_t.device).expand(z_t.shape[0])
        return self._lockstep.call(
            self._slot, "denoise", (z_t, steps, mask_onehot), float(guidance_scale)
        )
