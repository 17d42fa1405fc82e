"""Episode-list and sample-weight files: which episodes a run trains on, and how often each frame is drawn.

Written by the arm-heavy selection (``openpi.analysis.arm_heavy``, ``scripts/filter_arm_heavy_episodes.py``),
read by the data config and the training data loader; this module knows the files only, not the criteria.

File formats (JSON, written and read only through ``save_*`` / ``load_*`` below; ``criterion`` holds the fields
of the criterion that chose the episodes or weights):
- episode list: ``{"format": "openpi.episode_list", "version": 1, "repo_id", "criterion": {...},
  "episodes": [int, ...], "details": {"<episode_index>": {"arm_motion", "base_motion", "ratio", "selected",
  "source": "motion" | "annotations"}}}``; a plain JSON list of episode indices (``[10, 12, 31]``, LeRobot's own
  form of a selection) is read too: the indices are all a reader uses, the rest is provenance;
- sample weights: ``{"format": "openpi.sample_weights", "version": 1, "repo_id", "criterion": {...},
  "weights": {"<episode_index>": {"length": T, "runs": [[start, end, weight], ...]}}}`` — runs of equal
  weight, half-open, covering ``[0, T)``; ``load_sample_weights`` expands them to ``float32[T]`` per episode
  and ``sample_weight_fn`` turns the file into the data loader's ``sample_weights(episode_index, frame_index)``.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

EPISODE_LIST_FORMAT = "openpi.episode_list"
SAMPLE_WEIGHTS_FORMAT = "openpi.sample_weights"
FORMAT_VERSION = 1


def _header(kind: str, repo_id: str | None, criterion: Any) -> dict[str, Any]:
    return {"format": kind, "version": FORMAT_VERSION, "repo_id": repo_id, "criterion": dataclasses.asdict(criterion)}


def save_episode_list(
    path: pathlib.Path | str, selection: Any, *, criterion: Any, repo_id: str | None = None
) -> pathlib.Path:
    """Writes the episode-list file (format in the module docstring); ``selection`` has ``episodes`` and
    ``details`` (``arm_heavy.EpisodeSelection``), ``criterion`` is the selection's criterion dataclass."""
    data = _header(EPISODE_LIST_FORMAT, repo_id, criterion)
    data["episodes"] = [int(e) for e in selection.episodes]
    data["details"] = {str(k): v for k, v in selection.details.items()}
    return _write(path, data)


_EPISODE_LIST_HELP = (
    f'an episode list is a JSON list of episode indices, e.g. [10, 12, 31], or the {{"format": '
    f'"{EPISODE_LIST_FORMAT}", ...}} file scripts/filter_arm_heavy_episodes.py writes'
)


def load_episode_list(path: pathlib.Path | str) -> list[int]:
    """The selected episode indices from an episode-list file or a plain JSON list of indices; anything else
    (strings, floats, negative or repeated indices) is an error naming the file and the expected format."""
    data = _read_json(path, EPISODE_LIST_FORMAT)
    episodes = _check_header(path, data, EPISODE_LIST_FORMAT).get("episodes") if isinstance(data, dict) else data
    if not isinstance(episodes, list) or not all(
        isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in episodes
    ):
        shown = json.dumps(episodes)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(f"{path} is not an episode list (it holds {shown}): {_EPISODE_LIST_HELP}.")
    repeated = sorted(e for e, n in collections.Counter(episodes).items() if n > 1)
    if repeated:
        raise ValueError(f"{path} lists episode(s) {repeated} more than once; list each episode once.")
    return episodes


def _runs(weights: np.ndarray) -> list[list[float]]:
    edges = np.flatnonzero(np.diff(weights)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(weights)]])
    return [[int(s), int(e), float(weights[s])] for s, e in zip(starts, ends) if e > s]


def save_sample_weights(
    path: pathlib.Path | str, weights: Mapping[int, np.ndarray], *, criterion: Any, repo_id: str | None = None
) -> pathlib.Path:
    """Writes the sample-weights file (run-length encoded per episode; format in the module docstring)."""
    data = _header(SAMPLE_WEIGHTS_FORMAT, repo_id, criterion)
    data["weights"] = {str(int(k)): {"length": len(w), "runs": _runs(np.asarray(w))} for k, w in weights.items()}
    return _write(path, data)


def load_sample_weights(path: pathlib.Path | str) -> dict[int, np.ndarray]:
    """``{episode_index: float32[T]}`` per-frame sampling weights from a sample-weights file."""
    data = _check_header(path, _read_json(path, SAMPLE_WEIGHTS_FORMAT), SAMPLE_WEIGHTS_FORMAT)
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


def _read_json(path: pathlib.Path | str, kind: str) -> Any:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} file not found: {path}. Create it with scripts/filter_arm_heavy_episodes.py.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON (truncated?): {e}. Write it again.") from None


def _check_header(path: pathlib.Path | str, data: Any, kind: str) -> dict[str, Any]:
    """``data`` itself, once it is a JSON object of format ``kind`` and the supported version."""
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a {kind} file: it holds a JSON {type(data).__name__}, not an object.")
    if data.get("format") != kind:
        raise ValueError(f"{path} is not a {kind} file (format={data.get('format')!r}).")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported {kind} version {data.get('version')}; expected {FORMAT_VERSION}.")
    return data
