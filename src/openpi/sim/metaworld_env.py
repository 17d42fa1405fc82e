"""Meta-World tasks as a small, seeded robot environment: 39-dim state, two camera views, 4-dim action.

Each layout (object and goal positions) is a pure function of its seed: ``reset(seed)`` runs the task's own
layout sampler on a generator seeded with ``seed``, so the dataset writer and the evaluator get the same
layout for the same seed on any machine. The goal position is part of the state (Meta-World's
multi-task observation), so a policy can see where to go.

Action (Meta-World's): xyz end-effector delta in [-1, 1] (scaled by 1/100 m by the simulator) and a gripper
effort in [-1, 1] (positive closes). Success is ``info["success"]`` from the simulator.

Rendering is offscreen (set ``MUJOCO_GL=egl`` before MuJoCo is imported, as the scripts do); shadows and
reflections are off, which makes software rendering ~6x faster and leaves the scene readable.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless: must be set before mujoco is imported

STATE_DIM = 39
ACTION_DIM = 4
# Camera name in the Meta-World scene → dataset / observation key.
CAMERAS = {"corner2": "scene", "gripperPOV": "wrist"}
UPSIDE_DOWN = {"corner2"}  # this camera's frame is mounted upside down in Meta-World's scene; stored upright


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # Meta-World environment name
    instruction: str  # the language prompt
    expert: str  # class in metaworld.policies


# Chosen once, before any strategy was trained: a graded MT10 progression where the gripper's role grows,
# from none (reach), to holding the puck while pushing (push), to deciding success (pick-place: a policy
# that never closes its gripper cannot lift the puck).
TASKS: dict[str, Task] = {
    "reach-v3": Task("reach-v3", "reach the goal", "SawyerReachV3Policy"),
    "push-v3": Task("push-v3", "push the puck to the goal", "SawyerPushV3Policy"),
    "pick-place-v3": Task("pick-place-v3", "pick up the puck and place it at the goal", "SawyerPickPlaceV3Policy"),
}
DEFAULT_TASKS = tuple(TASKS)


def _require_metaworld():
    try:
        import metaworld
        import mujoco
    except ImportError as error:
        raise ImportError(
            f"The simulator needs the sim extra ({error}): pip install -e '.[sim]' (metaworld==3.1.1, mujoco==3.3.0)."
        ) from None
    return metaworld, mujoco


def task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"Unknown simulator task {name!r}; choose from {', '.join(TASKS)}.")
    return TASKS[name]


class MetaWorldEnv:
    """One Meta-World task with seeded layouts. ``reset(seed)`` and ``step(action)`` return observation dicts
    ``{"state": float32[39], "images": {"scene", "wrist"}: uint8[S, S, 3], "prompt": str}``; ``step`` also
    returns the simulator's success flag. ``render=False`` skips the cameras (the expert needs only state);
    ``step(action, render=False)`` skips them for one observation (its images are then empty), e.g. while a
    policy executes a chunk it already has. Physics never depends on rendering."""

    def __init__(self, task_name: str, *, image_size: int = 64, max_steps: int = 150, render: bool = True):
        metaworld, mujoco = _require_metaworld()
        self.task = task(task_name)
        self.max_steps = max_steps
        self.image_size = image_size
        env = metaworld.env_dict.ALL_V3_ENVIRONMENTS[task_name]()
        env._partially_observable = False  # the goal position is in the state (Meta-World's MT setting)
        del env.sawyer_observation_space  # recomputed for the goal-observable state
        env._set_task_called = True
        env._freeze_rand_vec = False  # sample layouts ...
        env.seeded_rand_vec = True  # ... from env.np_random, which reset() seeds
        self._env = env
        self._renderer = None
        if render:
            self._renderer = mujoco.Renderer(env.model, image_size, image_size)
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._renderer.scene.flags[flag] = False
        self.steps = 0

    def _observation(self, state: np.ndarray, render: bool = True) -> dict:
        images = {}
        if self._renderer is not None and render:
            for camera, key in CAMERAS.items():
                self._renderer.update_scene(self._env.data, camera=camera)
                image = self._renderer.render()
                images[key] = np.ascontiguousarray(image[::-1, ::-1] if camera in UPSIDE_DOWN else image)
        return {"state": state.astype(np.float32), "images": images, "prompt": self.task.instruction}

    def reset(self, seed: int) -> dict:
        """Starts layout ``seed``: the task's own sampler (which redraws layouts it rejects, e.g. a goal too
        close to the object) runs on a generator seeded with ``seed``."""
        from gymnasium.utils import seeding

        self._env.np_random, _ = seeding.np_random(seed)
        state, _ = self._env.reset()
        self.steps = 0
        return self._observation(state)

    @property
    def layout(self) -> np.ndarray:
        """The current layout's reset vector (object and goal positions)."""
        return np.array(self._env._last_rand_vec)

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict, bool, bool]:
        """(observation, success, done): done on success or after ``max_steps`` steps; ``render=False``: no
        images in the observation."""
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(-1), -1.0, 1.0)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"A Meta-World action has {ACTION_DIM} dims (xyz delta, gripper), got {action.shape}.")
        state, _, _, _, info = self._env.step(action)
        self.steps += 1
        success = bool(info["success"])
        return self._observation(state, render), success, success or self.steps >= self.max_steps

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()


class Expert:
    """Meta-World's scripted policy for a task, as ``reset()`` + ``act(obs) -> action`` (it reads the state)."""

    def __init__(self, task_name: str):
        from metaworld import policies

        # The scripted policies warn on every call that their gains exceed the action range; the clip is intended.
        warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
        self._policy = getattr(policies, task(task_name).expert)()

    def reset(self) -> None:
        pass  # the scripted policies are memoryless

    def needs_images(self) -> bool:
        return False  # it reads the state

    def act(self, obs: dict) -> np.ndarray:
        return np.clip(self._policy.get_action(np.asarray(obs["state"], dtype=np.float64)), -1.0, 1.0).astype(
            np.float32
        )
