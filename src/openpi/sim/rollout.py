"""Closed-loop execution: any policy with ``reset()`` and ``act(obs) -> one action`` runs in a simulator
(Meta-World's ``MetaWorldEnv`` or the mobile manipulator's ``MobileEnv``).

A trained model predicts action chunks; `model_policy` executes them through the serving stack's
``ChunkExecutor`` (receding horizon, temporal ensembling or prefix-conditioned replanning), exactly as
``scripts/serve_policy.py`` would for a real robot.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from openpi.serving import chunking as _chunking


class SimEnv(Protocol):
    steps: int

    def reset(self, seed: int) -> dict: ...

    def step(self, action: np.ndarray) -> tuple[dict, bool, bool]: ...


class StepPolicy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict) -> np.ndarray: ...


def model_policy(policy, config: _chunking.ChunkingConfig, horizon: int | None = None) -> _chunking.ChunkExecutor:
    """An openpi ``Policy`` (chunk per observation) as a ``StepPolicy`` on simulator observations."""
    infer = _chunking.chunk_fn(policy)
    return _chunking.ChunkExecutor(
        lambda obs, prefix, weights: infer(sim_observation(obs), prefix, weights), config, horizon=horizon
    )


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
    actions: np.ndarray  # [steps, action dim]: the executed actions
    navigated: bool | None = None  # mobile tasks: the base reached its pre-grasp region


def run_episode(env: SimEnv, policy: StepPolicy, seed: int, keep_frames: bool = False) -> Episode:
    """One episode of ``policy`` on layout ``seed`` until success or the step limit."""
    obs = env.reset(seed)
    policy.reset()
    frames = [obs["images"]] if keep_frames else []
    actions = []
    success, done = False, False
    while not done:
        action = np.array(policy.act(obs), dtype=np.float32)  # a copy: the simulator may change what it is given
        actions.append(action)
        obs, success, done = env.step(action)
        if keep_frames:
            frames.append(obs["images"])
    return Episode(seed=seed, success=success, steps=env.steps, frames=frames, actions=np.stack(actions),
                   navigated=getattr(env, "navigated", None))
