"""``Pi0Config``: openpi's model config plus the action-group loss weighting, validated at construction."""

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import re
from typing import Annotated

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import tyro

from openpi.models import gemma as _gemma
from openpi.models import model as _model
from openpi.models import pi0 as _pi0
from openpi.models import siglip as _siglip
from openpi.shared import action_groups as _groups
from openpi.shared import loss_weighting as _lw


def path_regex(pattern: str) -> nnx.filterlib.Filter:
    """An nnx filter matching parameters whose ``/``-joined path fully matches ``pattern``."""
    compiled = re.compile(pattern)
    return lambda path, _: compiled.fullmatch("/".join(str(p) for p in path)) is not None


# ``--model.action-groups xyz 0:3 gripper 3`` on the command line: NAME DIMS pairs, DIMS ``a:b`` or ``i,j,k``.
ActionGroupsArg = Annotated[
    Mapping[str, _groups.GroupDims] | None,
    tyro.constructors.PrimitiveConstructorSpec(
        nargs="*",
        metavar="NAME DIMS [NAME DIMS ...]",
        instance_from_str=_groups.pairs_to_groups,
        is_instance=lambda x: x is None or isinstance(x, Mapping),
        str_from_instance=lambda x: (
            ["None"] if x is None else [t for n, d in x.items() for t in (n, _groups.dims_to_text(d))]
        ),
    ),
]


@dataclasses.dataclass(frozen=True)
class Pi0Config(_model.BaseModelConfig):
    """pi0 / pi0.5 configuration (openpi's fields and defaults) with the loss-weighting fields of this project.

    ``loss_weighting_strategy`` defaults to ``"uniform"``, upstream openpi's behaviour. ``action_groups`` maps a
    group name to a half-open range ``(start, end)``, a list of indices or the text ``a:b`` / ``i,j``; dims no
    group names join a ``padding`` group of weight 0. ``group_weights`` gives each group one weight;
    ``body_roles`` says which groups are arms, grippers or base (default: from the group names). Invalid combinations raise ``ValueError`` here, before any
    model or data is built.

    ``vision_variant`` and ``image_resolution`` keep openpi's So400m/14 at 224x224 by default; a tiny tower
    (``"mu/16"``) with small images makes CPU tests and demos fast without changing any parameter name.
    """

    dtype: str = "bfloat16"
    """Computation dtype of the model (weights stay float32): bfloat16 on accelerators, float32 for CPU demos."""
    paligemma_variant: str = "gemma_2b"
    """Gemma size of the vision-language backbone (``gemma_2b``, ``gemma_2b_lora``, ``dummy`` for tests)."""
    action_expert_variant: str = "gemma_300m"
    """Gemma size of the action expert (``gemma_300m``, ``gemma_300m_lora``, ``dummy``); same depth as the backbone."""
    vision_variant: str = "So400m/14"
    """SigLIP size (big_vision name); openpi checkpoints use So400m/14, tests and demos a tiny tower like mu/16."""
    image_resolution: tuple[int, int] = _model.IMAGE_RESOLUTION
    """Model input size; openpi uses 224x224 (256 patches at /14). Smaller sizes only make sense for tiny models."""

    action_dim: int = 32
    """Action (and state) width the model works in; robot actions are zero-padded up to it."""
    action_horizon: int = 50
    """Actions predicted per chunk (and trained on per sample)."""
    max_token_len: int = None  # type: ignore[assignment]
    """Prompt length in tokens; default 200 for pi0.5, 48 for pi0."""
    pi05: bool = False
    """pi0.5 (adaRMS time conditioning, discrete state tokens) instead of pi0."""
    discrete_state_input: bool = None  # type: ignore[assignment]
    """Feed the state as discrete tokens in the prompt (pi0.5's way); defaults to ``pi05``."""
    vocab_size: int = _gemma.PALIGEMMA_VOCAB_SIZE
    """Rows of the token embedding. openpi checkpoints and the PaliGemma tokenizer need 257,152; the offline byte
    tokenizer's ids are below 512, and a tiny model with 512 rows drops 16.4M of its 16.9M parameters."""

    loss_weighting_strategy: _lw.Strategy = "uniform"
    """How the per-dim loss is weighted: ``uniform`` (openpi's plain mean), ``original`` (time weights from the
    change of the whole action vector, B1K's baseline), ``per_group`` (a weight per action group times the group's
    own time weight), ``per_dimension`` (a fixed weight per dim) or ``adaptive`` (group weights from each group's
    progress, no hand-set weights)."""
    action_groups: ActionGroupsArg = None
    """NAME DIMS pairs, e.g. ``xyz 0:3 gripper 3``; DIMS is ``start:end`` or comma-separated indices. Dims no group
    names become the ``padding`` group (weight 0). Drives the weights and the per-group metrics."""
    group_weights: Mapping[str, float] | None = None
    """Loss weight per action group, as NAME WEIGHT pairs, e.g. ``xyz 1 gripper 2`` (``padding`` defaults to 0); ``per_group``, or ``per_dimension``
    without dimension_weights."""
    body_roles: Mapping[str, _groups.BodyRole] | None = None
    """NAME ROLE pairs overriding the role guessed from each group's name (``gripper``/``arm``/``base`` in the name,
    else ``other``), e.g. ``xyz arm``. The analyzer and evaluator measure arms, grippers and base by role."""
    dimension_weights: Sequence[float] | None = None
    """Loss weight per action dim (``per_dimension`` only), normalized to mean 1."""
    use_delta_weighting: bool = True
    """Time weights from the action change between steps (``original`` and ``per_group`` only)."""
    delta_alpha: float = 0.2
    """Time weight ``clip(alpha + beta * min(change, cap), min_weight, max_weight)``: the offset alpha."""
    delta_beta: float = 1.0
    """Time weight: the slope beta on the (capped) action change."""
    delta_cap: float = 0.5
    """Time weight: the action change is capped at this value."""
    delta_min_weight: float = 0.1
    """Time weight: lower clip bound (> 0)."""
    delta_max_weight: float = 3.0
    """Time weight: upper clip bound (>= min_weight)."""
    exclude_padding: bool = False
    """Padding dims (the ``padding`` group) never enter the loss; weights and the loss are means over real dims."""
    adaptive_decay: float = 0.9
    """``adaptive`` strategy: EMA decay of each group's loss."""
    adaptive_warmup_steps: int = 20
    """``adaptive`` strategy: the first steps whose mean is each group's starting loss (weights stay 1 meanwhile)."""

    def __post_init__(self):
        if self.max_token_len is None:
            object.__setattr__(self, "max_token_len", 200 if self.pi05 else 48)
        if self.discrete_state_input is None:
            object.__setattr__(self, "discrete_state_input", self.pi05)
        if self.action_groups is not None:
            groups, weights = _groups.complete_layout(self.action_groups, self.group_weights, self.action_dim)
            object.__setattr__(self, "action_groups", groups)
            object.__setattr__(self, "group_weights", weights)
        for field in ("paligemma_variant", "action_expert_variant"):
            if getattr(self, field) not in _gemma.VARIANTS:
                raise ValueError(
                    f"Pi0Config.{field}={getattr(self, field)!r} is not a Gemma variant; choose one of "
                    f"{list(_gemma.VARIANTS)}."
                )
        depths = {v: _gemma.get_config(v).depth for v in (self.paligemma_variant, self.action_expert_variant)}
        if len(set(depths.values())) != 1:
            raise ValueError(
                f"paligemma_variant and action_expert_variant must have the same depth (they share attention "
                f"layer by layer), got {depths}."
            )
        if self.vocab_size < 1:
            raise ValueError(f"Pi0Config.vocab_size must be positive, got {self.vocab_size}.")
        patch = _siglip.decode_variant(self.vision_variant)["patch"]
        if any(size % patch for size in self.image_resolution):
            raise ValueError(
                f"Pi0Config.image_resolution={self.image_resolution} must be a multiple of the patch size {patch} "
                f"of vision_variant={self.vision_variant!r}."
            )
        self.loss_weighting  # noqa: B018  # validate now, not at the first training step
        self.group_roles  # noqa: B018

    @property
    def group_roles(self) -> dict[str, _groups.BodyRole]:
        """Each action group's body role (``body_roles`` over the guess from its name); empty without groups."""
        groups = self.loss_weighting.groups
        if groups is None:
            if self.body_roles:
                raise ValueError("model.body_roles were given without model.action_groups; define the groups first.")
            return {}
        return _groups.body_roles(groups.names, self.body_roles)

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
            exclude_padding=self.exclude_padding,
            adaptive=_lw.AdaptiveBalance(decay=self.adaptive_decay, warmup_steps=self.adaptive_warmup_steps),
        )

    @property
    def model_type(self) -> _model.ModelType:
        return _model.ModelType.PI05 if self.pi05 else _model.ModelType.PI0

    def create(self, rng: jax.Array) -> _pi0.Pi0:
        """A ``Pi0`` with freshly initialised float32 parameters (computation runs in ``dtype``)."""
        return _pi0.Pi0(self, rngs=nnx.Rngs(rng))

    def inputs_spec(self, *, batch_size: int = 1) -> tuple[_model.Observation, _model.Actions]:
        image = jax.ShapeDtypeStruct((batch_size, *self.image_resolution, 3), jnp.float32)
        mask = jax.ShapeDtypeStruct((batch_size,), jnp.bool_)
        observation = _model.Observation(
            images=dict.fromkeys(_model.IMAGE_KEYS, image),
            image_masks=dict.fromkeys(_model.IMAGE_KEYS, mask),
            state=jax.ShapeDtypeStruct((batch_size, self.action_dim), jnp.float32),
            tokenized_prompt=jax.ShapeDtypeStruct((batch_size, self.max_token_len), jnp.int32),
            tokenized_prompt_mask=jax.ShapeDtypeStruct((batch_size, self.max_token_len), jnp.bool_),
        )
        actions = jax.ShapeDtypeStruct((batch_size, self.action_horizon, self.action_dim), jnp.float32)
        return observation, actions

    def get_freeze_filter(self) -> nnx.filterlib.Filter:
        """Parameters to freeze for LoRA fine-tuning (openpi's rule): the base weights of every LoRA-adapted
        Gemma expert; LoRA factors and everything else stay trainable. ``nnx.Nothing`` without LoRA."""
        llm = path_regex(".*llm.*")
        expert = path_regex(".*llm.*_1.*")
        filters = []
        if "lora" in self.paligemma_variant:
            filters.append(llm)
            if "lora" not in self.action_expert_variant:
                filters.append(nnx.Not(expert))
        elif "lora" in self.action_expert_variant:
            filters.append(expert)
        if not filters:
            return nnx.Nothing
        return nnx.All(*filters, nnx.Not(path_regex(".*lora.*")))
