"""``Pi0Config``: openpi's model config plus the action-group loss weighting, validated at construction."""

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools

from openpi.shared import action_groups as _groups
from openpi.shared import loss_weighting as _lw


@dataclasses.dataclass(frozen=True)
class Pi0Config:
    """pi0 / pi0.5 configuration (openpi's fields and defaults) with the loss-weighting fields of this project.

    ``loss_weighting_strategy`` defaults to ``"uniform"``, upstream openpi's behaviour. ``action_groups`` maps a
    group name to a half-open range ``(start, end)`` or a list of indices and must cover every action dim;
    ``group_weights`` gives each group one weight. Invalid combinations raise ``ValueError`` here, before any
    model or data is built.
    """

    dtype: str = "bfloat16"
    paligemma_variant: str = "gemma_2b"
    action_expert_variant: str = "gemma_300m"

    action_dim: int = 32
    action_horizon: int = 50
    max_token_len: int = None  # type: ignore[assignment]  # → 200 for pi0.5, 48 for pi0
    pi05: bool = False
    # pi0.5 feeds the state as discrete tokens in the prompt; defaults to ``pi05``.
    discrete_state_input: bool = None  # type: ignore[assignment]

    # Action-group loss weighting.
    loss_weighting_strategy: _lw.Strategy = "uniform"
    action_groups: Mapping[str, _groups.GroupDims] | None = None
    group_weights: Mapping[str, float] | None = None
    dimension_weights: Sequence[float] | None = None
    use_delta_weighting: bool = True
    delta_alpha: float = 0.2
    delta_beta: float = 1.0
    delta_cap: float = 0.5
    delta_min_weight: float = 0.1
    delta_max_weight: float = 3.0

    def __post_init__(self):
        if self.max_token_len is None:
            object.__setattr__(self, "max_token_len", 200 if self.pi05 else 48)
        if self.discrete_state_input is None:
            object.__setattr__(self, "discrete_state_input", self.pi05)
        self.loss_weighting  # noqa: B018  # validate now, not at the first training step

    @functools.cached_property
    def loss_weighting(self) -> _lw.LossWeighting:
        """The validated, hashable loss-weighting description the JAX and PyTorch models both use."""
        return _lw.LossWeighting.create(
            self.loss_weighting_strategy,
            self.action_dim,
            action_groups=self.action_groups,
            group_weights=self.group_weights,
            dimension_weights=self.dimension_weights,
            use_delta_weighting=self.use_delta_weighting,
            delta=_lw.DeltaWeighting(
                alpha=self.delta_alpha,
                beta=self.delta_beta,
                cap=self.delta_cap,
                min_weight=self.delta_min_weight,
                max_weight=self.delta_max_weight,
            ),
        )
