"""openpi's ``training/config`` surface, kept so that code written for upstream openpi (``config.get_config(name)``,
``config.cli()``, ``config.TrainConfig``) runs unchanged. Each job lives in its own module:

- ``schema``: ``TrainConfig`` and the dataclasses it is made of;
- ``data_config``: ``DataConfig``, what a data config resolves to (decisions and transform pipelines);
- ``recipes``: the building blocks of the named configs (layouts, weights, the tiny CPU recipe, ``demo_twin``);
- ``registry``: the named configs and the lookup by name or file;
- ``config_cli``: the command line (``--config-name``, overrides, loss overrides that would change nothing).
"""

from openpi.training.config_cli import cli
from openpi.training.config_cli import with_config_overrides
from openpi.training.data_config import DataConfig
from openpi.training.recipes import ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import B1K_DELTA_ACTION_MASK
from openpi.training.recipes import BASE_CHECKPOINTS
from openpi.training.recipes import DEMO_DATASET_ROOT
from openpi.training.recipes import DEMO_MODEL_FIELDS
from openpi.training.recipes import DEMO_REPO_ID
from openpi.training.recipes import DEMO_TRAIN_FIELDS
from openpi.training.recipes import R1PRO_GROUPS
from openpi.training.recipes import SIM_ACTION_GROUPS
from openpi.training.recipes import SIM_ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import SIM_DATA
from openpi.training.recipes import SIM_DATASET_ROOT
from openpi.training.recipes import SIM_MODEL_FIELDS
from openpi.training.recipes import SIM_REPO_ID
from openpi.training.recipes import SIM_TRAIN_FIELDS
from openpi.training.recipes import VERY_ARM_FOCUSED_WEIGHTS
from openpi.training.recipes import demo_twin
from openpi.training.recipes import per_dimension_weights
from openpi.training.registry import configs
from openpi.training.registry import get_config
from openpi.training.registry import named_config
from openpi.training.schema import AssetsConfig
from openpi.training.schema import DataConfigFactory
from openpi.training.schema import LeRobotDataConfig
from openpi.training.schema import LRSchedule
from openpi.training.schema import ModelConfig
from openpi.training.schema import OptimizerConfig
from openpi.training.schema import TrainConfig

__all__ = [
    "ARM_FOCUSED_WEIGHTS",
    "B1K_DELTA_ACTION_MASK",
    "BASE_CHECKPOINTS",
    "DEMO_DATASET_ROOT",
    "DEMO_MODEL_FIELDS",
    "DEMO_REPO_ID",
    "DEMO_TRAIN_FIELDS",
    "R1PRO_GROUPS",
    "SIM_ACTION_GROUPS",
    "SIM_ARM_FOCUSED_WEIGHTS",
    "SIM_DATA",
    "SIM_DATASET_ROOT",
    "SIM_MODEL_FIELDS",
    "SIM_REPO_ID",
    "SIM_TRAIN_FIELDS",
    "VERY_ARM_FOCUSED_WEIGHTS",
    "AssetsConfig",
    "DataConfig",
    "DataConfigFactory",
    "LRSchedule",
    "LeRobotDataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "TrainConfig",
    "cli",
    "configs",
    "demo_twin",
    "get_config",
    "named_config",
    "per_dimension_weights",
    "with_config_overrides",
]
