"""Arm-heavy data selection: episode lists and per-frame sampling weights.

B1K episodes mix navigation (large base commands, still arms) and manipulation (still base, arm motion).
Motion measures, in raw units:
- arm motion = Σ_t Σ_{d ∈ arms} |q_d[t] − q_d[t−1]| (rad, both arms);
- base motion = Σ_t ‖v[t]‖₂ · dt over the base command dims (command units × s).
An episode is arm-heavy when ``arm ≥ arm_ratio_threshold · base`` and ``arm ≥ min_arm_movement``; with skill
annotations (``skill_type``: ``"navigation"`` vs any other kind = manipulation) when its manipulation frames
number ≥ ``arm_ratio_threshold`` × its navigation frames (the arm-motion floor still applies).

Windows are action chunks ``[t, t + horizon)`` (cut at the episode end); the weight of frame t is the sampling
weight of the chunk that starts there. A window is arm-heavy when its non-navigation frames number
≥ ``arm_ratio_threshold`` × its navigation frames, a frame being navigation when the base command norm
exceeds ``base_velocity`` (or by its annotation). Windows count time, not motion: inside a short window the
base's large commands outweigh slow arm motion in rad at every navigation/manipulation boundary, and the slow
start and end of an arm motion would fall under any per-window floor on arm motion.

The episode-list and sample-weight files are read and written by ``openpi.datasets.episode_files``.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

import numpy as np

from openpi.analysis import common


@dataclasses.dataclass(frozen=True)
class Criterion:
    """When an episode or window counts as arm-heavy."""

    arm_ratio_threshold: float = 1.5
    min_arm_movement: float = 0.1  # rad, summed over both arms
    horizon: int = 50  # window length (the action chunk)
    base_velocity: float = 1e-2  # window level: a frame is navigation when the base command norm exceeds this
    oversample: float = 3.0  # sampling weight of an arm-heavy window (others: 1)
    use_annotations: bool = False

    def __post_init__(self):
        if not self.arm_ratio_threshold >= 0 or not self.min_arm_movement >= 0:
            raise ValueError("arm_ratio_threshold and min_arm_movement must be >= 0.")
        if self.horizon < 1 or not self.oversample > 0:
            raise ValueError(f"horizon must be >= 1 and oversample > 0, got {self.horizon}, {self.oversample}.")


def frame_motion(table: common.ActionTable, roles: common.BodyRoles) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: arm motion Σ|Δq| into that frame (0 at episode starts) and base motion ‖v‖·dt."""
    change = table.step_change()
    arm = np.abs(change[:, list(roles.arms)]).sum(axis=1)
    base = np.linalg.norm(table.actions[:, list(roles.base)].astype(np.float64), axis=1) / table.fps
    return arm, base


@dataclasses.dataclass(frozen=True)
class EpisodeSelection:
    episodes: list[int]  # selected episode indices
    details: dict[int, dict[str, Any]]  # per episode: arm_motion, base_motion, ratio, selected, source


def select_episodes(
    table: common.ActionTable,
    criterion: Criterion = Criterion(),
    *,
    roles: common.BodyRoles = common.R1PRO_ROLES,
    labels: Mapping[int, np.ndarray] | None = None,
) -> EpisodeSelection:
    """Arm-heavy episodes; ``labels`` maps an episode index to per-frame int8 labels (1 manipulation, 0
    navigation, −1 unannotated), used instead of the motion ratio when ``criterion.use_annotations``."""
    arm, base = frame_motion(table, roles)
    offsets = table.offsets
    arm_sum = np.add.reduceat(arm, offsets[:-1]) if len(arm) else np.zeros(0)
    base_sum = np.add.reduceat(base, offsets[:-1]) if len(base) else np.zeros(0)
    details, chosen = {}, []
    for e, ep in enumerate(table.episode_index.tolist()):
        label = labels.get(ep) if labels is not None and criterion.use_annotations else None
        if label is not None:
            manip, nav = int(np.sum(label == 1)), int(np.sum(label == 0))
            ok = manip >= criterion.arm_ratio_threshold * nav and arm_sum[e] >= criterion.min_arm_movement
            source = "annotations"
        else:
            ok = arm_sum[e] >= criterion.arm_ratio_threshold * base_sum[e] and arm_sum[e] >= criterion.min_arm_movement
            source = "motion"
        details[ep] = {
            "arm_motion": float(arm_sum[e]),
            "base_motion": float(base_sum[e]),
            "ratio": float(arm_sum[e] / max(base_sum[e], 1e-9)),
            "selected": bool(ok),
            "source": source,
        }
        if ok:
            chosen.append(ep)
    return EpisodeSelection(episodes=chosen, details=details)


def window_weights(
    table: common.ActionTable,
    criterion: Criterion = Criterion(),
    *,
    roles: common.BodyRoles = common.R1PRO_ROLES,
    labels: Mapping[int, np.ndarray] | None = None,
) -> dict[int, np.ndarray]:
    """Per episode, ``float32[T]`` sampling weights: ``oversample`` where the chunk starting there is arm-heavy.

    Frames are labeled navigation (base command norm above ``criterion.base_velocity``) or not, or by the
    skill annotations when ``criterion.use_annotations``; a chunk is arm-heavy when its non-navigation frames
    number at least ``arm_ratio_threshold`` × its navigation frames.
    """
    speed = np.linalg.norm(table.actions[:, list(roles.base)].astype(np.float64), axis=1)
    motion_labels = (speed <= criterion.base_velocity).astype(np.int8)
    out = {}
    offsets = table.offsets
    for e, ep in enumerate(table.episode_index.tolist()):
        start, end = offsets[e], offsets[e + 1]
        label = labels.get(ep) if labels is not None and criterion.use_annotations else None
        label = motion_labels[start:end] if label is None else label
        t = np.arange(end - start)
        stop = np.minimum(t + criterion.horizon, end - start)
        manip_c = np.concatenate([[0], np.cumsum(label == 1)])
        nav_c = np.concatenate([[0], np.cumsum(label == 0)])
        manip, nav = manip_c[stop] - manip_c[t], nav_c[stop] - nav_c[t]
        heavy = (manip >= criterion.arm_ratio_threshold * nav) & (manip > 0)
        out[ep] = np.where(heavy, criterion.oversample, 1.0).astype(np.float32)
    return out


def skill_labels(annotation: Mapping[str, Any], length: int) -> np.ndarray:
    """int8[length] frame labels from a B1K annotation dict: 0 navigation, 1 other skills, −1 none.

    ``frame_duration`` is ``[start, end]``, read as half-open and clipped to the episode.
    """
    labels = np.full(length, -1, dtype=np.int8)
    for skill in annotation.get("skill_annotation", []):
        start, end = (int(v) for v in skill["frame_duration"])
        kind = skill.get("skill_type")
        kind = kind[0] if isinstance(kind, list) and kind else kind
        labels[max(start, 0) : min(end, length)] = 0 if str(kind).strip().lower() == "navigation" else 1
    return labels
