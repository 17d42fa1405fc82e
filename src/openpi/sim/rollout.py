"""Closed-loop execution: any policy with ``reset()`` and ``act(obs) -> one action`` runs in the simulator.

A trained model predicts action chunks; `ChunkedPolicy` turns that into one action per call with a plain
receding horizon (execute the first ``execute_steps`` actions of a chunk, then replan from the new
observation). The serving stack's chunk executor has the same ``reset`` / ``act`` shape and drops in here.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from openpi.sim import metaworld_env


class StepPolicy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict) -> np.ndarray: ...


class ChunkedPolicy:
    """An openpi ``Policy`` (chunk per observation) as a ``StepPolicy``: receding horizon, ``execute_steps``
    actions of every chunk before replanning."""

    def __init__(self, policy, execute_steps: int):
        if execute_steps < 1:
            raise ValueError(f"execute_steps must be at least 1, got {execute_steps}.")
        self._policy = policy
        self._execute_steps = execute_steps
        self._queue: list[np.ndarray] = []

    def reset(self) -> None:
        self._queue = []

    def act(self, obs: dict) -> np.ndarray:
        if not self._queue:
            chunk = np.asarray(self._policy.infer(sim_observation(obs))["actions"])
            self._queue = list(chunk[: self._execute_steps])
        return self._queue.pop(0)


def sim_observation(obs: dict) -> dict:
    """A simulator observation under the dataset's keys, as a trained policy's input transforms expect."""
    out = {"observation.state": obs["state"], "task": obs["prompt"]}
    for key, image in obs["images"].items():
        out[f"observation.images.{key}"] = image
    return out


@dataclasses.dataclass
class Episode:
    seed: int
    success: bool
    steps: int  # steps taken (to success, or the step limit)
    frames: list[dict[str, np.ndarray]]  # camera images per step (only when kept)


def run_episode(env: metaworld_env.MetaWorldEnv, policy: StepPolicy, seed: int, keep_frames: bool = False) -> Episode:
    """One episode of ``policy`` on layout ``seed`` until success or the step limit."""
    obs = env.reset(seed)
    policy.reset()
    frames = [obs["images"]] if keep_frames else []
    success, done = False, False
    while not done:
        obs, success, done = env.step(policy.act(obs))
        if keep_frames:
            frames.append(obs["images"])
    return Episode(seed=seed, success=success, steps=env.steps, frames=frames)
