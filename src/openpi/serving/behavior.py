"""BEHAVIOR challenge observations (OmniGibson's evaluator) → the B1K dataset keys the policy was trained on.

Facts from OmniGibson (``learning/eval.py`` ``_preprocess_obs`` and ``learning/utils/eval_utils.py``): the
evaluator flattens the observation with ``::`` (``flatten_obs_dict``), so the robot ``robot_r1`` gives
``robot_r1::proprio`` (B1K's ``observation.state``) and one RGB(A) uint8 image per camera
``robot_r1::robot_r1:<link>:Camera:0::rgb`` with links ``zed_link`` (head), ``left_realsense_link`` and
``right_realsense_link``; it adds ``robot_r1::cam_rel_poses`` (unused here) and ``task_id`` (an int64 tensor [1],
the index in ``TASK_NAMES_TO_INDICES``, which is B1K's task index).

Both editions' evaluators are understood. 2025: a 256-dim proprio. 2026 (BEHAVIOR-1K tag v3.9.3,
``OmniGibson/omnigibson/eval/utils/network_utils.py``): a 61-dim proprio (``r1pro.PROPRIO_2026``), optional
``::depth_linear`` images beside the RGB ones (ignored here: only the keys above are read), and optional chunk
requests: a request carrying ``__action_chunk_size__: K`` is answered with ``action`` and ``action_chunk`` [K, 23],
``action == action_chunk[0]`` (see `action_chunk_size`). The task prompts come from the dataset's tasks, so a
2026 dataset root maps the 2026 task ids.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
import pathlib

import numpy as np

from openpi.datasets import lerobot_meta
from openpi.policies import b1k_policy

ROBOT_NAME = "robot_r1"
TASK_ID_KEY = "task_id"
ACTION_CHUNK_SIZE_KEY = "__action_chunk_size__"  # the 2026 client's chunk request
# B1K dataset camera key → OmniGibson camera link.
CAMERA_LINKS = {
    "observation.images.rgb.head": "zed_link",
    "observation.images.rgb.left_wrist": "left_realsense_link",
    "observation.images.rgb.right_wrist": "right_realsense_link",
}


def camera_key(link: str, robot: str = ROBOT_NAME) -> str:
    return f"{robot}::{robot}:{link}:Camera:0::rgb"


def proprio_key(robot: str = ROBOT_NAME) -> str:
    return f"{robot}::proprio"


def action_chunk_size(request: Mapping, horizon: int) -> int | None:
    """The K of a chunk request (None for a one-step request); K must be in [1, horizon] (the model's chunk)."""
    if ACTION_CHUNK_SIZE_KEY not in request:
        return None
    value = np.asarray(request[ACTION_CHUNK_SIZE_KEY])
    if value.size != 1 or not np.issubdtype(value.dtype, np.integer) or not 1 <= int(value.reshape(-1)[0]) <= horizon:
        raise ValueError(
            f"{ACTION_CHUNK_SIZE_KEY} must be an integer in [1, {horizon}] (the model's action horizon), got "
            f"{request[ACTION_CHUNK_SIZE_KEY]!r}. Ask for at most {horizon} actions per request."
        )
    return int(value.reshape(-1)[0])


def load_task_prompts(path: str | pathlib.Path) -> dict[int, str]:
    """Task index → prompt from a JSON file ``{"0": "turn on the radio", ...}`` or a LeRobot dataset root (its
    tasks)."""
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        return dict(lerobot_meta.LeRobotMetadata.load(path).tasks)
    if not path.is_file():
        raise FileNotFoundError(f"Task prompts not found: {path} (a JSON file of task id → prompt, or a dataset root).")
    return {int(k): str(v) for k, v in json.loads(path.read_text()).items()}


@dataclasses.dataclass(frozen=True)
class BehaviorObservations:
    """Maps one evaluator observation to a dataset-style sample: cameras (RGB, alpha dropped), proprio, prompt."""

    task_prompts: Mapping[int, str]
    robot: str = ROBOT_NAME

    def __call__(self, obs: Mapping) -> dict:
        sample = {}
        for dataset_key, link in CAMERA_LINKS.items():
            image = np.asarray(self._get(obs, camera_key(link, self.robot)))
            if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
                raise ValueError(
                    f"BEHAVIOR observation {camera_key(link, self.robot)!r} must be a uint8 [H, W, 3|4] image, "
                    f"got {image.dtype} {image.shape}."
                )
            sample[dataset_key] = image[..., :3]
        proprio = np.asarray(self._get(obs, proprio_key(self.robot)), dtype=np.float32)
        if proprio.ndim != 1:
            raise ValueError(f"BEHAVIOR observation {proprio_key(self.robot)!r} must be a vector, got {proprio.shape}.")
        b1k_policy.proprio_edition(proprio.shape[0])  # 256 (2025) or 61 (2026): anything else is named here
        bad = np.flatnonzero(~np.isfinite(proprio)).tolist()
        if bad:
            raise ValueError(
                f"BEHAVIOR observation {proprio_key(self.robot)!r} has NaN or infinite values at dims {bad[:10]}"
                f"{' ...' if len(bad) > 10 else ''}; the robot's state must be finite."
            )
        sample["observation.state"] = proprio
        task_id = int(np.asarray(self._get(obs, TASK_ID_KEY)).reshape(-1)[0])
        if task_id not in self.task_prompts:
            raise KeyError(
                f"No prompt for task_id {task_id}; known ids {sorted(self.task_prompts)}. Pass --task-prompts "
                "(a JSON file of task id → prompt, or the B1K dataset root)."
            )
        sample["task"] = self.task_prompts[task_id]
        return sample

    @staticmethod
    def _get(obs: Mapping, key: str):
        if key not in obs:
            raise KeyError(f"BEHAVIOR observation has no {key!r}; it has {sorted(map(str, obs))}.")
        return obs[key]
