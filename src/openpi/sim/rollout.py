"""Closed-loop execution: any policy with ``reset()`` and ``act(obs) -> one action`` runs in a simulator
(Meta-World's ``MetaWorldEnv`` or the mobile manipulator's ``MobileEnv``).

A trained model predicts action chunks; `model_policy` executes them through the serving stack's
``ChunkExecutor`` (receding horizon, temporal ensembling or prefix-conditioned replanning), exactly as
``scripts/serve_policy.py`` would for a real robot.

Two savings that leave every outcome unchanged: an environment renders its cameras only for the observations a
policy reads (``needs_images``: a chunk executor reads one at replanning steps only; physics does not depend on
rendering), and `run_episodes` steps several environments together, sending the queries due at a step as one
batched model call (``Policy.infer_batch``). A ``Policy`` starts every chunk from the same seeded noise, batched or
not, so batching changes no noise draw; the chunks agree up to float rounding of the batched matmuls.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
from typing import Protocol

import numpy as np

from openpi.serving import chunking as _chunking


class SimEnv(Protocol):
    steps: int

    def reset(self, seed: int) -> dict: ...

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict, bool, bool]: ...


class StepPolicy(Protocol):
    """``needs_images() -> bool`` (optional; absent: always True) says whether the next ``act`` reads the
    observation's images, so the environment renders only those."""

    def reset(self) -> None: ...

    def act(self, obs: dict) -> np.ndarray: ...


class ModelPolicy(_chunking.ChunkExecutor):
    """An openpi ``Policy`` (chunk per observation) executing its chunks on simulator observations."""

    def __init__(self, policy, config: _chunking.ChunkingConfig, horizon: int | None = None):
        self.policy = policy
        infer = _chunking.chunk_fn(policy)
        super().__init__(lambda obs, prefix, weights: infer(sim_observation(obs), prefix, weights), config,
                         horizon=horizon)

    def needs_images(self) -> bool:
        return self.next_query() is not None


def model_policy(policy, config: _chunking.ChunkingConfig, horizon: int | None = None) -> ModelPolicy:
    """An openpi ``Policy`` as a ``StepPolicy`` on simulator observations."""
    return ModelPolicy(policy, config, horizon)


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
    return run_episodes([env], [policy], [seed], keep_frames=lambda _seed: keep_frames)[0]


@dataclasses.dataclass
class _Slot:
    """An environment's episode in progress."""

    seed: int
    obs: dict
    keep: bool
    frames: list[dict[str, np.ndarray]]
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)


def run_episodes(
    envs: Sequence[SimEnv],
    policies: Sequence[StepPolicy],
    seeds: Sequence[int],
    *,
    keep_frames: Callable[[int], bool] = lambda _seed: False,
    on_episode: Callable[[Episode], None] = lambda _episode: None,
) -> list[Episode]:
    """The episodes of ``seeds`` (in that order), on the environments stepped together: environment i with
    ``policies[i]``, each taking the next seed when its episode ends. The ``ModelPolicy`` queries due at a step
    go out as one ``infer_batch`` per ``Policy``. ``keep_frames(seed)``, asked when an episode starts: keep its
    camera images of every step; ``on_episode`` is called with each finished episode."""
    if len(envs) != len(policies) or not envs or len({id(p) for p in policies}) < len(policies):
        raise ValueError(f"run_episodes needs a policy object of its own for each environment, got {len(envs)} "
                         f"environments and {len({id(p) for p in policies})} distinct policies.")
    queue, done = list(enumerate(seeds))[::-1], {}
    slots: list[tuple[int, _Slot] | None] = [None] * len(envs)

    def start(i: int) -> None:
        slots[i] = None
        if queue:
            index, seed = queue.pop()
            keep = keep_frames(seed)
            obs = envs[i].reset(seed)
            policies[i].reset()
            slots[i] = (index, _Slot(seed, obs, keep, [obs["images"]] if keep else []))

    for i in range(len(envs)):
        start(i)
    while any(slots):
        active = [i for i, s in enumerate(slots) if s is not None]
        actions = _act([policies[i] for i in active], [slots[i][1].obs for i in active])
        for i, action in zip(active, actions, strict=True):
            index, slot = slots[i]
            env, policy = envs[i], policies[i]
            slot.actions.append(action)
            render = slot.keep or getattr(policy, "needs_images", lambda: True)()
            slot.obs, success, finished = env.step(action, render=render)
            if slot.keep:
                slot.frames.append(slot.obs["images"])
            if finished:
                done[index] = Episode(seed=slot.seed, success=success, steps=env.steps, frames=slot.frames,
                                      actions=np.stack(slot.actions), navigated=getattr(env, "navigated", None))
                on_episode(done[index])
                start(i)
    return [done[i] for i in range(len(seeds))]


def _act(policies: Sequence[StepPolicy], observations: Sequence[dict]) -> list[np.ndarray]:
    """Every policy's action for its observation; the due ``ModelPolicy`` queries of one ``Policy`` (and prefix
    length) as one ``infer_batch`` call."""
    groups: dict[tuple[int, int | None], list[tuple[int, tuple]]] = {}
    for i, policy in enumerate(policies):
        if isinstance(policy, ModelPolicy) and (query := policy.next_query()) is not None:
            key = (id(policy.policy), None if query[0] is None else len(query[0]))
            groups.setdefault(key, []).append((i, query))
    chunks: dict[int, np.ndarray] = {}
    for members in groups.values():
        prefix, weights = (None if members[0][1][0] is None else np.stack([q[j] for _, q in members]) for j in (0, 1))
        out = policies[members[0][0]].policy.infer_batch(
            [sim_observation(observations[i]) for i, _ in members], prefix=prefix, prefix_weights=weights
        )["actions"]
        chunks.update({i: chunk for (i, _), chunk in zip(members, out, strict=True)})
    # Copies: the simulator may change what it is given.
    return [
        np.array(policy.act(obs, chunk=chunks[i]) if i in chunks else policy.act(obs), dtype=np.float32)
        for i, (policy, obs) in enumerate(zip(policies, observations, strict=True))
    ]
