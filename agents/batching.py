"""Gathering concurrent requests into batches for a blocking, batched engine.

In-process engines (`vllm.LLM.generate`) are fastest when given many prompts at once, but
episodes ask one turn at a time from many coroutines. `MicroBatcher` collects the requests
that arrive while the engine is busy (or within `max_wait_s`) and runs them as one batch on
a worker thread, so the event loop keeps serving the sandbox and the other episodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Request = TypeVar("Request")
Response = TypeVar("Response")


class MicroBatcher(Generic[Request, Response]):
    """Runs `batch_fn(requests) -> responses` (same length, same order) on gathered requests.

    One batch runs at a time; a request waits for the current batch, then joins the next.
    An exception from `batch_fn` is raised in every request of that batch.
    """

    def __init__(
        self,
        batch_fn: Callable[[Sequence[Request]], Sequence[Response]],
        *,
        max_batch: int = 256,
        max_wait_s: float = 0.01,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[Request, asyncio.Future[Response]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches_run = 0

    async def submit(self, request: Request) -> Response:
        """Queue one request and wait for its response."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            # Let requests issued in the same tick (or within max_wait_s) join this batch.
            await asyncio.sleep(self.max_wait_s)
            batch, self._pending = (
                self._pending[: self.max_batch],
                self._pending[self.max_batch :],
            )
            requests = [request for request, _ in batch]
            try:
                responses = await asyncio.to_thread(self.batch_fn, requests)
                if len(responses) != len(batch):
                    raise RuntimeError(
                        f"the batch function returned {len(responses)} responses "
                        f"for {len(batch)} requests"
                    )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                self.batches_run += 1
            for (_, future), response in zip(batch, responses, strict=True):
                if not future.done():
                    future.set_result(response)
