"""Normalization statistics: the `NormStats` record, a streaming `RunningStats`, and openpi's `norm_stats.json`.

`RunningStats` keeps exact mean and std (Chan's parallel merge of per-batch mean and sum of squared deviations,
in float64) and approximates q01/q99 from a per-dim histogram whose range grows with the data. The range grows
by whole multiples of the old bin width and stays aligned with the old edges, so counts move into the new bins
exactly; a quantile is therefore off by at most one final bin, a few / num_bins of the dim's range.
Rows may carry weights (used to reproduce the statistics of overlapping action chunks without expanding them).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

NORM_STATS_FILE = "norm_stats.json"


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Per-dim statistics of one feature; q01/q99 are needed only for quantile normalization.

    Arrays are [D], or [H, D] for per-timestep action stats (one row per index of the action chunk)."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None

    def to_json(self) -> dict[str, list[float]]:
        out = {"mean": _as_list(self.mean), "std": _as_list(self.std)}
        if self.q01 is not None:
            out["q01"] = _as_list(self.q01)
        if self.q99 is not None:
            out["q99"] = _as_list(self.q99)
        return out

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> NormStats:
        def arr(key: str) -> np.ndarray | None:
            return None if data.get(key) is None else np.asarray(data[key], dtype=np.float64)

        if "mean" not in data or "std" not in data:
            raise ValueError(f"Norm stats entry needs 'mean' and 'std', got keys {sorted(data)}.")
        return cls(mean=arr("mean"), std=arr("std"), q01=arr("q01"), q99=arr("q99"))


def _as_list(x: np.ndarray) -> list:
    """[D] → a list of floats; per-timestep [H, D] → a list of H lists."""
    x = np.asarray(x, dtype=np.float64)
    return x.tolist() if x.ndim == 2 else [float(v) for v in x.reshape(-1)]


class RunningStats:
    """Streaming statistics over rows of a [..., D] array (all leading axes are rows)."""

    def __init__(self, num_bins: int = 5000):
        if num_bins < 10:
            raise ValueError(f"num_bins must be at least 10, got {num_bins}.")
        self._num_bins = num_bins
        self._count = 0.0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._lo: np.ndarray | None = None  # lower histogram edge per dim
        self._width: np.ndarray | None = None  # bin width per dim
        self._hist: np.ndarray | None = None  # float64[D, num_bins]

    @property
    def count(self) -> float:
        """Total weight seen (the number of rows when unweighted)."""
        return self._count

    def update(self, batch: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Adds rows; ``weights`` (one per row, >= 0) counts a row that many times."""
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == 0:
            raise ValueError("RunningStats.update needs an array with a trailing feature axis.")
        x = batch.reshape(-1, batch.shape[-1]) if batch.ndim > 1 else batch.reshape(-1, 1)
        if weights is None:
            w = None
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if len(w) != len(x):
                raise ValueError(f"Got {len(w)} weights for {len(x)} rows.")
            keep = w > 0
            x, w = x[keep], w[keep]
        if len(x) == 0:
            return
        if not np.all(np.isfinite(x)):
            row, dim = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"Non-finite value {x[row, dim]} in dim {dim} of the data given to RunningStats.")
        if self._mean is not None and x.shape[1] != len(self._mean):
            raise ValueError(f"RunningStats expected {len(self._mean)} dims, got {x.shape[1]}.")

        if w is None:
            total = float(len(x))
            mean_b = x.sum(axis=0) / total
            m2_b = np.square(x - mean_b).sum(axis=0)
        else:
            total = w.sum()
            mean_b = (w @ x) / total
            m2_b = w @ np.square(x - mean_b)
        bmin, bmax = x.min(axis=0), x.max(axis=0)
        if self._mean is None:
            self._count, self._mean, self._m2 = total, mean_b, m2_b
            self._min, self._max = bmin, bmax
            self._init_histogram(bmin, bmax)
        else:
            delta = mean_b - self._mean
            new_count = self._count + total
            self._mean = self._mean + delta * (total / new_count)
            self._m2 = self._m2 + m2_b + np.square(delta) * (self._count * total / new_count)
            self._count = new_count
            self._min, self._max = np.minimum(self._min, bmin), np.maximum(self._max, bmax)
            self._grow_histogram(bmin, bmax)
        self._add_to_histogram(x, w)

    def _init_histogram(self, lo: np.ndarray, hi: np.ndarray) -> None:
        span = hi - lo
        # A constant first batch still needs a positive width; later data widens it as needed.
        floor = np.maximum(np.abs(lo), 1.0) * 1e-9
        self._width = np.maximum(span, floor) / (self._num_bins - 1)
        self._lo = lo - 0.5 * self._width
        self._hist = np.zeros((len(lo), self._num_bins))

    def _grow_histogram(self, bmin: np.ndarray, bmax: np.ndarray) -> None:
        nb = self._num_bins
        for d in np.flatnonzero((bmin < self._lo) | (bmax >= self._lo + nb * self._width)):
            lo, w = self._lo[d], self._width[d]
            need_lo, need_hi = self._min[d], self._max[d]
            # New width = k old widths and new lower edge = old edge − n new widths, so every old bin nests in
            # one new bin and counts move exactly; n centres the data in the new range.
            k = max(1, math.ceil((need_hi - need_lo) / ((nb - 1) * w)))
            while True:
                n_min = math.ceil((lo - need_lo) / (k * w))
                n_max = math.ceil((lo + nb * k * w - need_hi) / (k * w)) - 1
                if n_min <= n_max:
                    break
                k += 1
            n = (n_min + n_max) // 2
            target = n + np.arange(nb) // k
            inside = (target >= 0) & (target < nb)  # bins that fall outside hold no data
            new_hist = np.zeros(nb)
            np.add.at(new_hist, target[inside], self._hist[d, inside])
            self._hist[d] = new_hist
            self._lo[d], self._width[d] = lo - n * k * w, k * w

    def _add_to_histogram(self, x: np.ndarray, w: np.ndarray | None) -> None:
        nb, dims = self._num_bins, x.shape[1]
        idx = np.clip(np.floor((x - self._lo) / self._width).astype(np.int64), 0, nb - 1)
        if w is None:  # one bincount over all dims at once
            flat = (idx + np.arange(dims) * nb).reshape(-1)
            self._hist += np.bincount(flat, minlength=dims * nb).reshape(dims, nb)
        else:  # per dim, so the weights need not be repeated for every dim
            for d in range(dims):
                self._hist[d] += np.bincount(idx[:, d], weights=w, minlength=nb)

    def _value_at_count(self, d: int, cdf: np.ndarray, count: float) -> float:
        """The value of the ``count``-th smallest row (1-based, by weight) of dim d, to within one bin."""
        i = min(int(np.searchsorted(cdf, count - 1e-9, side="left")), self._num_bins - 1)
        below = cdf[i - 1] if i > 0 else 0.0
        within = (count - below - 0.5) / self._hist[d, i] if self._hist[d, i] > 0 else 0.0
        return self._lo[d] + (i + 0.5 + min(max(within, -0.5), 0.5)) * self._width[d]

    def _quantile(self, q: float) -> np.ndarray:
        """Like ``np.quantile`` (linear between order statistics at position q·(N − 1)), to within a bin."""
        out = np.empty(len(self._hist))
        for d in range(len(self._hist)):
            cdf = np.cumsum(self._hist[d])
            position = q * (cdf[-1] - 1.0)
            k = math.floor(position)
            frac = position - k
            low = self._value_at_count(d, cdf, k + 1.0)
            high = self._value_at_count(d, cdf, min(k + 2.0, cdf[-1])) if frac > 0 else low
            out[d] = (1 - frac) * low + frac * high
        return np.clip(out, self._min, self._max)

    def get_statistics(self) -> NormStats:
        """Mean, population std, q01 and q99 of everything seen so far."""
        if self._mean is None:
            raise ValueError("RunningStats has seen no data; cannot compute statistics.")
        std = np.sqrt(np.maximum(self._m2 / self._count, 0.0))
        return NormStats(mean=self._mean.copy(), std=std, q01=self._quantile(0.01), q99=self._quantile(0.99))


def serialize_json(norm_stats: dict[str, NormStats]) -> str:
    """openpi's file content: ``{"norm_stats": {key: {"mean", "std", "q01", "q99"}}}``."""
    return json.dumps({"norm_stats": {k: v.to_json() for k, v in norm_stats.items()}}, indent=2)


def deserialize_json(data: str) -> dict[str, NormStats]:
    parsed = json.loads(data)
    if "norm_stats" not in parsed:
        raise ValueError(f"Not a norm_stats file: top-level keys are {sorted(parsed)}, expected 'norm_stats'.")
    return {k: NormStats.from_json(v) for k, v in parsed["norm_stats"].items()}


def save(directory: pathlib.Path | str, norm_stats: dict[str, NormStats]) -> pathlib.Path:
    """Writes ``<directory>/norm_stats.json`` and returns its path."""
    path = pathlib.Path(directory) / NORM_STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(serialize_json(norm_stats))
    return path


def load(directory: pathlib.Path | str) -> dict[str, NormStats]:
    """Reads ``<directory>/norm_stats.json``."""
    path = pathlib.Path(directory) / NORM_STATS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"Norm stats file not found: {path}. Compute it with `python scripts/compute_norm_stats.py`."
        )
    try:
        return deserialize_json(path.read_text())
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a readable norm-stats file ({type(error).__name__}: {error}); it may be truncated. "
            "Recompute it with scripts/compute_norm_stats.py."
        ) from None


def check_usable(norm_stats: dict[str, NormStats], path: pathlib.Path | str) -> None:
    """Stats a policy can train or act with: an ``actions`` entry (without one, actions would stay raw) and only
    finite numbers (a NaN or inf would poison every normalized value). Raises ``ValueError`` naming the file."""
    if "actions" not in norm_stats:
        raise ValueError(f"{path} has no 'actions' entry (it has {sorted(norm_stats)}): actions would not be "
                         "normalized. Recompute it with scripts/compute_norm_stats.py.")
    for key, stats in norm_stats.items():
        for name in ("mean", "std", "q01", "q99"):
            values = getattr(stats, name)
            if values is not None and not np.all(np.isfinite(values)):
                bad = np.argwhere(~np.isfinite(np.atleast_1d(values)))[:, -1].tolist()
                raise ValueError(f"{path}: '{key}' {name} is not finite at dims {bad}. Recompute it with "
                                 "scripts/compute_norm_stats.py (are there NaNs in the data?).")

