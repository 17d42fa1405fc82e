"""Will a config fit? Memory per device for training and for inference, from shapes alone (no weights loaded,
nothing allocated): parameters, trainable parameters (LoRA or full), optimizer state, EMA, gradients, and
activations with and without remat.

    python scripts/estimate_memory.py --config-name pi05_b1k
    python scripts/estimate_memory.py --config-name pi05_b1k --fsdp-devices 4 --batch-size 64
    python scripts/estimate_memory.py --config-name pi05_b1k --model.paligemma-variant gemma_2b_lora \\
        --model.action-expert-variant gemma_300m_lora

Any TrainConfig override may follow the tool's own options. Activations are XLA's own figures for the real
loss/grad and sampling steps compiled on this machine's CPU for float32 models, and counted from the architecture
for bfloat16 ones (``--activations xla|analytic`` chooses; a pi0.5 compile takes about a minute). The figures are
defined in ``openpi.training.memory``.
"""

import dataclasses
from typing import Literal

import tyro

from openpi.analysis import sources
from openpi.training import config as _config
from openpi.training import memory


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str
    """Training config: a registered name, path/to/file.py:NAME or package.module:NAME. Any TrainConfig override
    (e.g. --model.paligemma-variant gemma_2b_lora) may follow the tool's own options."""
    config_overrides: tyro.conf.Suppress[tuple[str, ...]] = ()
    fsdp_devices: int | None = None
    """Devices the parameters and optimizer state are sharded over, which also split the batch (default: the
    config's fsdp_devices)."""
    batch_size: int | None = None
    """Global batch size (default: the config's)."""
    activations: Literal["auto", "xla", "analytic"] = "auto"
    """'xla': compile the real steps on abstract inputs and read XLA's memory analysis; 'analytic': count from
    the architecture without compiling; 'auto': xla for float32 models, analytic for bfloat16 ones (this CPU's XLA
    runs part of a bfloat16 step in float32, which would overstate an accelerator's activations)."""


def run(args: Args) -> memory.Estimate:
    config = _config.get_config(args.config_name, args.config_overrides)
    result = memory.estimate(
        config, batch_size=args.batch_size, fsdp_devices=args.fsdp_devices, activations=args.activations
    )
    print(memory.format_report(result))
    return result


def main() -> None:
    sources.tool_main(Args, run, __doc__)


if __name__ == "__main__":
    main()
