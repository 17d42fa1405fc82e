"""Convert pi0 / pi0.5 weights between JAX (openpi params) and PyTorch (``model.safetensors``), both ways.

    python scripts/convert_weights.py jax-to-pytorch --params PARAMS_DIR_OR_NPZ --output-dir OUT_DIR
    python scripts/convert_weights.py pytorch-to-jax --input-dir OUT_DIR --output PARAMS_DIR_OR_NPZ

e.g. ``--params ~/.cache/openpi/openpi-assets/checkpoints/pi05_base/params`` (openpi's cache layout).

pi0 vs pi0.5, the Gemma / SigLIP variants (incl. LoRA), the image resolution and the action dim are read from the
weights themselves. The PyTorch side is a directory with ``model.safetensors`` and ``config.json``; the JAX side an
orbax params directory (openpi's ``.../params``) or an ``.npz`` of ``/``-joined leaf names.
"""

import dataclasses
from typing import Literal

import tyro

from openpi.models_pytorch import weight_conversion
from openpi.shared import checkpoint_files
from openpi.shared import cli


@dataclasses.dataclass(frozen=True)
class JaxToPytorch:
    params: str
    """JAX params: an orbax params directory or an .npz file."""
    output_dir: str
    """Directory to write model.safetensors and config.json into."""
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    """bfloat16: each weight in the dtype the bf16 PI0Pytorch keeps it in (norms etc. stay float32)."""
    action_horizon: int = 50
    """Recorded in config.json (the weights do not depend on it)."""


@dataclasses.dataclass(frozen=True)
class PytorchToJax:
    input_dir: str
    """Directory with model.safetensors (or the .safetensors file itself)."""
    output: str
    """Where to write the JAX params: an .npz file, otherwise an orbax params directory."""


def main(args: JaxToPytorch | PytorchToJax) -> None:
    if isinstance(args, JaxToPytorch):
        spec = weight_conversion.convert_jax_to_pytorch(
            args.params, args.output_dir, dtype=args.dtype, action_horizon=args.action_horizon
        )
        print(f"Wrote {args.output_dir}/{checkpoint_files.MODEL_FILE} for {spec}")
    else:
        spec = weight_conversion.convert_pytorch_to_jax(args.input_dir, args.output)
        print(f"Wrote JAX params to {args.output} for {spec}")


def cli_main() -> None:
    main(tyro.extras.subcommand_cli_from_dict({"jax-to-pytorch": JaxToPytorch, "pytorch-to-jax": PytorchToJax},
                                              description=__doc__))


if __name__ == "__main__":
    cli.run_main(cli_main)  # a missing or foreign weights file: the message only
