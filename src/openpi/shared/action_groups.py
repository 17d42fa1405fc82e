"""Framework-neutral description of action groups and the per-dimension weights they imply.

A group is a name and the action dims it owns, given either as a half-open range ``(start, end)`` or as an
explicit list of indices (R1Pro's grippers are dims 14 and 22, not a range). A layout is validated once,
before any compute, and every error names the offending group and dims so a bad config fails on the spot.
The JAX and PyTorch loss twins both consume the validated objects built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import math
from typing import Literal

import numpy as np

# What users write: (start, end) half-open range, a list of indices, a `range`, or the CLI-friendly strings
# "7:14" (range) and "14,22" (indices).
GroupDims = tuple[int, int] | Sequence[int] | range | str


def parse_dims(name: str, dims: GroupDims) -> tuple[int, ...]:
    """Turns one user-facing group description into an explicit tuple of dims."""
    if isinstance(dims, str):
        text = dims.strip()
        try:
            if ":" in text:
                start, end = (int(part) for part in text.split(":"))
                dims = range(start, end)
            else:
                dims = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                f"Action group '{name}': cannot parse {dims!r}; write a range as 'start:end' or indices as 'i,j,k'."
            ) from None
    if isinstance(dims, tuple):
        if len(dims) != 2:
            raise ValueError(
                f"Action group '{name}': a tuple means a half-open range (start, end), got {dims!r}. "
                "Use a list for explicit indices, e.g. [14, 22]."
            )
        start, end = (int(v) for v in dims)
        if end <= start:
            raise ValueError(f"Action group '{name}': empty or reversed range ({start}, {end}); end must exceed start.")
        dims = range(start, end)
    indices = tuple(int(d) for d in dims)
    if not indices:
        raise ValueError(f"Action group '{name}' has no dims.")
    if len(set(indices)) != len(indices):
        repeated = sorted({d for d in indices if indices.count(d) > 1})
        raise ValueError(f"Action group '{name}' lists dims {repeated} more than once.")
    return indices


def pairs_to_groups(args: Sequence[str]) -> dict[str, str] | None:
    """The command-line form ``NAME DIMS [NAME DIMS ...]`` (DIMS ``a:b`` or ``i,j,k``) → ``{name: dims}``;
    no arguments (or ``None``) mean no groups."""
    if not args or list(args) == ["None"]:
        return None
    if len(args) % 2:
        raise ValueError(f"Action groups come in NAME DIMS pairs (e.g. xyz 0:3 gripper 3), got {' '.join(args)!r}.")
    groups = dict(zip(args[::2], args[1::2]))
    for name, dims in groups.items():
        parse_dims(name, dims)
    return groups


def dims_to_text(dims: GroupDims) -> str:
    """The command-line text of one group's dims: ``a:b`` for a contiguous run, ``i,j`` otherwise."""
    indices = sorted(parse_dims("?", dims))
    if len(indices) > 1 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}:{indices[-1] + 1}"
    return ",".join(str(d) for d in indices)


def complete_layout(
    groups: Mapping[str, GroupDims], group_weights: Mapping[str, float] | None, action_dim: int
) -> tuple[dict[str, GroupDims], dict[str, float] | None]:
    """``groups`` plus a ``padding`` group of the dims in ``[0, action_dim)`` that no group names (the model's
    padded dims), and ``group_weights`` with ``padding`` at 0 unless given. A layout naming every dim is kept."""
    groups = dict(groups)
    named = {d for name, dims in groups.items() for d in parse_dims(name, dims)}
    unnamed = [d for d in range(action_dim) if d not in named]
    if unnamed and "padding" not in groups:
        groups["padding"] = dims_to_text(unnamed)
    if group_weights is not None and "padding" in groups:
        group_weights = {"padding": 0.0, **group_weights}
    return groups, None if group_weights is None else dict(group_weights)


# What a group drives, for the tools that measure arm activity, gripper agreement and base error.
BodyRole = Literal["arm", "gripper", "base", "other"]


def body_roles(names: Sequence[str], overrides: Mapping[str, BodyRole] | None = None) -> dict[str, BodyRole]:
    """Each group's body role: ``overrides`` where given, else from its name (``gripper`` in it → gripper,
    ``arm`` → arm, ``base`` → base, anything else → other)."""
    unknown = sorted(set(overrides or {}) - set(names))
    if unknown:
        raise ValueError(f"Body roles given for unknown action groups {unknown}; the groups are {list(names)}.")
    bad = {n: r for n, r in (overrides or {}).items() if r not in BodyRole.__args__}
    if bad:
        raise ValueError(f"Unknown body roles {bad}; a role is one of {list(BodyRole.__args__)}.")
    out: dict[str, BodyRole] = {}
    for name in names:
        guess = next((role for role in ("gripper", "arm", "base") if role in name.lower()), "other")
        out[name] = (overrides or {}).get(name, guess)
    return out


def _describe(dims: Sequence[int]) -> str:
    """Compact text for a set of dims: '7:14' for a contiguous run, '[14, 22]' otherwise."""
    dims = sorted(dims)
    if len(dims) > 1 and dims == list(range(dims[0], dims[-1] + 1)):
        return f"{dims[0]}:{dims[-1] + 1}"
    return str(dims)


@dataclasses.dataclass(frozen=True)
class ActionGroups:
    """A validated partition of ``[0, action_dim)`` into named groups (every dim in exactly one group)."""

    names: tuple[str, ...]
    dims: tuple[tuple[int, ...], ...]
    action_dim: int

    @classmethod
    def create(cls, groups: Mapping[str, GroupDims] | ActionGroups, action_dim: int) -> ActionGroups:
        """Validates ``groups`` against ``action_dim``: in range, no overlap, every dim covered."""
        if isinstance(groups, ActionGroups):
            if groups.action_dim != action_dim:
                raise ValueError(f"Action groups were built for action_dim={groups.action_dim}, not {action_dim}.")
            return groups
        if action_dim <= 0:
            raise ValueError(f"action_dim must be positive, got {action_dim}.")
        if not groups:
            raise ValueError("Action groups are empty; give at least one group covering all action dims.")
        names, all_dims = [], []
        owner: dict[int, str] = {}
        for name, spec in groups.items():
            dims = parse_dims(name, spec)
            outside = [d for d in dims if not 0 <= d < action_dim]
            if outside:
                raise ValueError(
                    f"Action group '{name}' has dims {outside} outside [0, {action_dim}) (action_dim={action_dim})."
                )
            for d in dims:
                if d in owner:
                    shared = sorted(set(dims) & {k for k, v in owner.items() if v == owner[d]})
                    raise ValueError(f"Action groups '{owner[d]}' and '{name}' overlap on dims {shared}.")
            owner.update(dict.fromkeys(dims, name))
            names.append(str(name))
            all_dims.append(dims)
        uncovered = [d for d in range(action_dim) if d not in owner]
        if uncovered:
            raise ValueError(
                f"Action dims {_describe(uncovered)} belong to no group; every dim must be in exactly one group "
                "(add e.g. a 'padding' group with weight 0 for unused dims)."
            )
        return cls(names=tuple(names), dims=tuple(all_dims), action_dim=action_dim)

    @property
    def dim_to_group(self) -> np.ndarray:
        """int[action_dim]: the index (into ``names``) of the group that owns each dim."""
        out = np.empty(self.action_dim, dtype=np.int32)
        for i, dims in enumerate(self.dims):
            out[list(dims)] = i
        return out

    @property
    def membership(self) -> np.ndarray:
        """float32[action_dim, num_groups] one-hot matrix: ``membership[d, g] = 1`` iff dim d is in group g."""
        out = np.zeros((self.action_dim, len(self.names)), dtype=np.float32)
        out[np.arange(self.action_dim), self.dim_to_group] = 1.0
        return out

    def group_weight_vector(self, group_weights: Mapping[str, float]) -> np.ndarray:
        """float64[num_groups] in ``names`` order, after checking every group has exactly one valid weight."""
        unknown = [k for k in group_weights if k not in self.names]
        if unknown:
            raise ValueError(f"Weights given for unknown action groups {unknown}; known groups: {list(self.names)}.")
        missing = [n for n in self.names if n not in group_weights]
        if missing:
            raise ValueError(
                f"Action groups {missing} (dims {', '.join(_describe(self.dims[self.names.index(n)]) for n in missing)}) "
                "have no weight; give every group a weight (0 to ignore it)."
            )
        values = np.array([float(group_weights[n]) for n in self.names], dtype=np.float64)
        check_weights(values, labels=[f"group '{n}'" for n in self.names])
        return values

    def dimension_weight_vector(self, group_weights: Mapping[str, float]) -> np.ndarray:
        """float64[action_dim]: each dim gets its group's weight."""
        return self.group_weight_vector(group_weights)[self.dim_to_group]

    def to_json(self) -> dict[str, str]:
        """A readable layout for logs and run configs, e.g. ``{"left_arm": "7:14", "grippers": "[14, 22]"}``."""
        return {n: _describe(d) for n, d in zip(self.names, self.dims, strict=True)}


def check_weights(values: Sequence[float] | np.ndarray, *, labels: Sequence[str]) -> None:
    """Rejects negative, NaN or infinite weights and an all-zero set, naming the offending entries."""
    values = [float(v) for v in values]
    for label, v in zip(labels, values, strict=True):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"Weight for {label} is {v}; weights must be finite numbers >= 0.")
        if v < 0:
            raise ValueError(f"Weight for {label} is negative ({v}); weights must be >= 0.")
    if not any(v > 0 for v in values):
        raise ValueError("All loss weights are zero; at least one group or dim needs a positive weight.")
