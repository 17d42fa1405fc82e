"""Turn a chunk policy ([H, D] per query) into a per-step one: one action per ``act(obs)``.

Three execution modes (``ChunkingConfig.mode``):

- ``"receding"``: execute the first ``replan_every`` (k) actions of each chunk, then query a new one.
- ``"ensemble"``: query every k steps and keep every chunk that still covers the current step; the action is the
  weighted mean of their predictions for it with ACT's weights ``w_i = exp(-ensemble_decay · i)``, ``i = 0`` the
  oldest chunk (so older predictions count more for ``ensemble_decay > 0``, a plain mean at 0).
- ``"prefix"``: like receding, but the new chunk is sampled with the previous chunk's not-yet-executed actions
  inpainted into the flow (``Policy.infer(prefix=...)``): the first ``prefix_hard`` of them with weight 1 (they
  are committed: the new chunk starts exactly with them), the rest of the overlap L = H − k with real-time
  chunking's decaying weights ``c_i (e^{c_i} − 1) / (e − 1)``, ``c_i = (L − i) / (L − d + 1)`` for ``d <= i < L``
  (``prefix_soft``; off: weight 0). The executed actions stay continuous across replans.

``policy_fn(obs, prefix, prefix_weights) -> [H, D]`` is any chunk policy in raw robot units; ``prefix`` is None or
[p, D] with weights [p] in [0, 1]. ``chunk_fn(policy)`` wraps an ``openpi.policies.policy.Policy``.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import math
from typing import Literal

import numpy as np

Mode = Literal["receding", "ensemble", "prefix"]
PolicyFn = Callable[[dict, np.ndarray | None, np.ndarray | None], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ChunkingConfig:
    """How a per-step server executes chunks."""

    # receding: execute replan_every actions of a chunk, then replan. ensemble: ACT's exponentially weighted mean of
    # the overlapping chunks. prefix: replan with the unexecuted overlap inpainted, so chunks join continuously.
    mode: Mode = "receding"
    # Actions executed per chunk before the next query (receding, prefix); query interval for ensemble (1 = ACT).
    replan_every: int = 10
    # ACT's m in w_i = exp(-m·i), i = 0 the oldest chunk covering the step (ensemble).
    ensemble_decay: float = 0.01
    # Leading actions of the overlap inpainted with weight 1 (prefix).
    prefix_hard: int = 2
    # Guide the rest of the overlap with decaying weights (prefix); off: only the hard rows are inpainted.
    prefix_soft: bool = True

    def validate(self, horizon: int) -> None:
        if self.mode not in ("receding", "ensemble", "prefix"):
            raise ValueError(f"Unknown chunking mode {self.mode!r}; use receding, ensemble or prefix.")
        if not 1 <= self.replan_every <= horizon:
            raise ValueError(f"replan_every must be in [1, {horizon}] (the action horizon), got {self.replan_every}.")
        if self.mode == "prefix" and self.replan_every == horizon:
            raise ValueError("Prefix mode needs an overlap: replan_every must be below the action horizon.")
        if self.mode == "prefix" and not 0 <= self.prefix_hard <= horizon - self.replan_every:
            raise ValueError(
                f"prefix_hard must be in [0, {horizon - self.replan_every}] (the overlap H - replan_every), "
                f"got {self.prefix_hard}."
            )
        if self.ensemble_decay < 0:
            raise ValueError(f"ensemble_decay must be >= 0, got {self.ensemble_decay}.")


def prefix_weights(overlap: int, hard: int, soft: bool) -> np.ndarray:
    """Inpainting weights [overlap]: 1 on the ``hard`` leading rows, then RTC's exponential decay (or 0)."""
    weights = np.zeros(overlap, np.float32)
    weights[:hard] = 1.0
    if soft:
        i = np.arange(hard, overlap)
        c = (overlap - i) / (overlap - hard + 1)
        weights[hard:] = c * np.expm1(c) / (math.e - 1)
    return weights


def chunk_fn(policy) -> PolicyFn:
    """The ``PolicyFn`` of an ``openpi`` ``Policy``: its raw-unit action chunk."""

    def fn(obs: dict, prefix: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        return policy.infer(obs, prefix=prefix, prefix_weights=weights)["actions"]

    return fn


class ChunkExecutor:
    """Per-step actions from a chunk policy. ``reset()`` at every episode start; ``act(obs)`` once per step.

    ``config`` defaults to ``ChunkingConfig()``; ``horizon`` (optional) validates it up front, else the first
    chunk does. ``queries`` counts policy calls since the last reset.
    """

    def __init__(self, policy_fn: PolicyFn, config: ChunkingConfig | None = None, *, horizon: int | None = None):
        self._policy_fn = policy_fn
        self.config = config = config or ChunkingConfig()
        if horizon is not None:
            config.validate(horizon)
        self.reset()

    def reset(self) -> None:
        self.step = 0
        self.queries = 0
        self._chunks: list[tuple[int, np.ndarray]] = []  # (first step, raw chunk [H, D]), oldest first

    def _query(self, obs: dict, prefix: np.ndarray | None, weights: np.ndarray | None, chunk: np.ndarray | None):
        if chunk is None:
            chunk = self._policy_fn(obs, prefix, weights)
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2:
            raise ValueError(f"policy_fn must return an [H, D] chunk, got shape {chunk.shape}.")
        if self.queries == 0:
            self.config.validate(chunk.shape[0])
        self.queries += 1
        return chunk

    def next_query(self) -> tuple[np.ndarray | None, np.ndarray | None] | None:
        """The (prefix, prefix weights) the next ``act`` queries the policy with (None, None without a prefix), or
        None when it queries nothing (it executes a chunk it has)."""
        config, step = self.config, self.step
        if self._chunks and step - self._chunks[-1][0] < config.replan_every:
            return None
        if config.mode == "prefix" and self._chunks:
            start, previous = self._chunks[-1]
            prefix = previous[step - start :]
            return prefix, prefix_weights(len(prefix), config.prefix_hard, config.prefix_soft)
        return None, None

    def act(self, obs: dict, chunk: np.ndarray | None = None) -> np.ndarray:
        """The action [D] for this step (querying the policy when the mode says so). ``chunk``: the answer to this
        step's query (``next_query``) computed elsewhere, e.g. in one batched call for many executors."""
        config, step = self.config, self.step
        query = self.next_query()
        if config.mode == "ensemble":
            if query is not None:
                self._chunks.append((step, self._query(obs, *query, chunk)))
            self._chunks = [(s, c) for s, c in self._chunks if step - s < len(c)]
            weights = np.exp(-config.ensemble_decay * np.arange(len(self._chunks)))
            predictions = np.stack([c[step - s] for s, c in self._chunks])
            action = weights @ predictions / weights.sum()
        else:
            if query is not None:
                self._chunks = [(step, self._query(obs, *query, chunk))]
            start, current = self._chunks[-1]
            action = current[step - start]
        self.step += 1
        return np.asarray(action, dtype=np.float32)
