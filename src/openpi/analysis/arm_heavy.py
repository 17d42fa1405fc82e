"""Arm-heavy data selection: episode lists and per-frame sampling weights, plus their file formats.

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

File formats (JSON, written and read only through ``save_*`` / ``load_*`` below):
- episode list: ``{"format": "openpi.episode_list", "version": 1, "repo_id", "criterion": {...},
  "episodes": [int, ...], "details": {"<episode_index>": {"arm_motion", "base_motion", "ratio", "selected",
  "source": "motion" | "annotations"}}}``;
- sample weights: ``{"format": "openpi.sample_weights", "version": 1, "repo_id", "criterion": {...},
  "weights": {"<episode_index>": {"length": T, "runs": [[start, end, weight], ...]}}}`` — runs of equal
  weight, half-open, covering ``[0, T)``; ``load_sample_weights`` expands them to ``float32[T]`` per episode
  and ``sample_weight_fn`` turns the file into the data loader's ``sample_weights(episode_index, frame_index)``.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from openpi.analysis import common

EPISODE_LIST_FORMAT = "openpi.episode_list"
SAMPLE_WEIGHTS_FORMAT = "openpi.sample_weights"
FORMAT_VERSION = 1


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


def _header(kind: str, repo_id: str | None, criterion: Criterion) -> dict[str, Any]:
    return {"format": kind, "version": FORMAT_VERSION, "repo_id": repo_id, "criterion": dataclasses.asdict(criterion)}


def save_episode_list(
    path: pathlib.Path | str, selection: EpisodeSelection, *, criterion: Criterion, repo_id: str | None = None
) -> pathlib.Path:
    """Writes the episode-list file (format in the module docstring)."""
    data = _header(EPISODE_LIST_FORMAT, repo_id, criterion)
    data["episodes"] = [int(e) for e in selection.episodes]
    data["details"] = {str(k): v for k, v in selection.details.items()}
    return _write(path, data)


def load_episode_list(path: pathlib.Path | str) -> list[int]:
    """The selected episode indices from an episode-list file."""
    data = _read(path, EPISODE_LIST_FORMAT)
    return [int(e) for e in data["episodes"]]


def _runs(weights: np.ndarray) -> list[list[float]]:
    edges = np.flatnonzero(np.diff(weights)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(weights)]])
    return [[int(s), int(e), float(weights[s])] for s, e in zip(starts, ends) if e > s]


def save_sample_weights(
    path: pathlib.Path | str, weights: Mapping[int, np.ndarray], *, criterion: Criterion, repo_id: str | None = None
) -> pathlib.Path:
    """Writes the sample-weights file (run-length encoded per episode; format in the module docstring)."""
    data = _header(SAMPLE_WEIGHTS_FORMAT, repo_id, criterion)
    data["weights"] = {str(int(k)): {"length": len(w), "runs": _runs(np.asarray(w))} for k, w in weights.items()}
    return _write(path, data)


def load_sample_weights(path: pathlib.Path | str) -> dict[int, np.ndarray]:
    """``{episode_index: float32[T]}`` per-frame sampling weights from a sample-weights file."""
    data = _read(path, SAMPLE_WEIGHTS_FORMAT)
    out = {}
    for key, entry in data["weights"].items():
        w = np.full(int(entry["length"]), np.nan, dtype=np.float32)
        for start, end, value in entry["runs"]:
            w[int(start) : int(end)] = value
        if np.isnan(w).any() or (w < 0).any():
            raise ValueError(f"{path}: episode {key}'s weight runs do not cover [0, {len(w)}) with weights >= 0.")
        out[int(key)] = w
    return out


def lookup_weights(weights: Mapping[int, np.ndarray], episode_index: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
    """Per sample, the weight of (episode, frame); raises when the file does not cover a sample."""
    out = np.empty(len(episode_index), dtype=np.float64)
    episode_index, frame_index = np.asarray(episode_index), np.asarray(frame_index)
    for ep in np.unique(episode_index):
        rows = np.flatnonzero(episode_index == ep)
        if int(ep) not in weights:
            raise KeyError(f"Sample weights have no entry for episode {int(ep)}; recompute them for this dataset.")
        w = weights[int(ep)]
        frames = frame_index[rows]
        if frames.max() >= len(w):
            raise ValueError(f"Sample weights for episode {int(ep)} cover {len(w)} frames, not frame {frames.max()}.")
        out[rows] = w[frames]
    return out


def sample_weight_fn(path: pathlib.Path | str):
    """``(episode_index[N], frame_index[N]) -> weights[N]`` from a sample-weights file: the form the data
    loader's ``sample_weights`` argument takes."""
    weights = load_sample_weights(path)
    return lambda episode_index, frame_index: lookup_weights(weights, episode_index, frame_index)


def _write(path: pathlib.Path | str, data: dict[str, Any]) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def _read(path: pathlib.Path | str, kind: str) -> dict[str, Any]:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} file not found: {path}. Create it with scripts/filter_arm_heavy_episodes.py.")
    data = json.loads(path.read_text())
    if data.get("format") != kind:
        raise ValueError(f"{path} is not a {kind} file (format={data.get('format')!r}).")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported {kind} version {data.get('version')}; expected {FORMAT_VERSION}.")
    return data
