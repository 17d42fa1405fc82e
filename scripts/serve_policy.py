"""Serve a trained checkpoint (JAX or PyTorch trainer, run in either framework) over websockets.

    python scripts/serve_policy.py --config-name pi0_b1k_arm_focused --checkpoint checkpoints/<exp>/30000
    python scripts/serve_policy.py --config-name pi0_b1k_arm_focused --checkpoint checkpoints/<exp> --protocol behavior \
        --chunking.mode prefix --chunking.replan-every 10

``--protocol openpi`` (default) answers openpi-client's ``infer(obs)`` with the whole raw-unit chunk ``actions``
[H, D]; a batched client sends ``{"batch": [obs, ...]}`` and gets ``actions`` [B, H, D] from one model call.
``--protocol behavior`` answers OmniGibson's evaluator client one 23-dim ``action`` per step, executing chunks
on the server as ``--chunking.*`` says (receding horizon by default). Clients send raw observations (uint8 images,
raw state); the checkpoint's norm stats and the config's transforms do the rest. ``GET /healthz`` answers ``OK``.
"""

import dataclasses
import logging
import pathlib

import tyro

from openpi.policies import policy_config
from openpi.serving import behavior
from openpi.serving import chunking as _chunking
from openpi.serving import websocket_server
from openpi.shared import cli
from openpi.training import checkpoint_io
from openpi.training import config as _config


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str
    """The training config the checkpoint was trained with (its data transforms and model): a registered name,
    path/to/file.py:NAME or package.module:NAME. Any TrainConfig override the run was trained with (e.g.
    --data.image-keys ... --model.action-groups ...) follows the tool's own options."""
    checkpoint: str
    """A step directory (params/ or model.safetensors, with assets/) or an experiment directory (latest step)."""
    config_overrides: tyro.conf.Suppress[tuple[str, ...]] = ()
    port: int = 8000
    """TCP port; 0 picks a free one (logged)."""
    host: str = "0.0.0.0"
    protocol: websocket_server.Protocol = "openpi"
    """openpi: chunk per request (openpi-client). behavior: one action per request (BEHAVIOR challenge client)."""
    framework: checkpoint_io.Framework | None = None
    """Runtime; default the framework that wrote the checkpoint."""
    num_steps: int = 10
    """Flow-matching integration steps per chunk."""
    seed: int = 0
    """Seed of the fixed sampling noise (same observation → same chunk)."""
    chunking: _chunking.ChunkingConfig = dataclasses.field(default_factory=_chunking.ChunkingConfig)
    """behavior protocol: how chunks become per-step actions (receding, ensemble, prefix)."""
    task_prompts: str | None = None
    """behavior protocol: task_id → prompt, a JSON file {"0": "...", ...} or a B1K dataset root (its tasks);
    default the config's dataset root."""
    robot_name: str = behavior.ROBOT_NAME
    """behavior protocol: the robot name prefixing OmniGibson's observation keys."""


def build_server(args: Args) -> websocket_server.PolicyServer:
    train_config = _config.get_config(args.config_name, args.config_overrides)
    policy = policy_config.create_trained_policy(
        train_config, args.checkpoint, num_steps=args.num_steps, seed=args.seed, framework=args.framework
    )
    observations = None
    if args.protocol == "behavior":
        source = args.task_prompts or train_config.data_config().root
        if source is None or not pathlib.Path(source).expanduser().exists():
            raise FileNotFoundError(
                f"No task prompts for the behavior protocol: the config's dataset root {source} does not exist. "
                "Pass --task-prompts (a JSON file of task id → prompt, or the B1K dataset root)."
            )
        observations = behavior.BehaviorObservations(behavior.load_task_prompts(source), robot=args.robot_name)
    return websocket_server.PolicyServer(
        policy,
        protocol=args.protocol,
        host=args.host,
        port=args.port,
        chunking=args.chunking,
        observations=observations,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def run() -> None:
        args, overrides = tyro.cli(Args, description=__doc__, return_unknown_args=True)
        build_server(_config.with_config_overrides(args, overrides)).serve_forever()

    cli.run_main(run)


if __name__ == "__main__":
    main()
