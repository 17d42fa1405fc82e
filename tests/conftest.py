"""Session-wide miniature B1K datasets, written once and shared by the dataset, loader and script tests."""

import pathlib
import socket

import pytest

from openpi.datasets import mini_b1k


def _write(tmp_path_factory, name: str, **kwargs) -> pathlib.Path:
    root = tmp_path_factory.mktemp("mini_b1k") / name
    config = mini_b1k.MiniB1KConfig(root=root, **kwargs)
    mini_b1k.write_mini_b1k(config, progress=False)
    return root


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread: tiny models on shared cores run faster than with threads fighting for the CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Small on purpose: 2 tasks × 2 episodes × ~60 frames, 64×64 video.
MINI_KWARGS = dict(num_tasks=2, episodes_per_task=2, frames_per_episode=60, image_size=64, seed=7)


@pytest.fixture(scope="session")
def mini_v21(tmp_path_factory) -> pathlib.Path:
    """B1K's own layout: LeRobot v2.1, hevc."""
    return _write(tmp_path_factory, "v21", version="v2.1", codec="hevc", **MINI_KWARGS)


@pytest.fixture(scope="session")
def mini_v30(tmp_path_factory) -> pathlib.Path:
    """LeRobot v3.0 with several episodes per parquet/mp4 file (and two files), av1."""
    return _write(tmp_path_factory, "v30", version="v3.0", codec="av1", episodes_per_file=3, **MINI_KWARGS)


@pytest.fixture(scope="session")
def demo_run_dir(tmp_path_factory, mini_v21):
    """Factory: ``make(config_name)`` -> a fresh run directory holding the miniature dataset's norm stats for that
    B1K demo config, and the trainer arguments that point at it (dataset, assets, checkpoints, batch 4, log every
    step). Modules add their own flags."""
    from openpi.datasets import stats as _stats
    from openpi.policies import b1k_policy
    from openpi.shared import normalize as _normalize
    from openpi.training import config as _config

    stats = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)

    def make(config_name: str) -> tuple[pathlib.Path, list[str]]:
        tmp = tmp_path_factory.mktemp(config_name)
        _normalize.save(tmp / "assets" / config_name / _config.DEMO_REPO_ID, stats)
        args = [
            f"--data.root={mini_v21}",
            f"--assets-base-dir={tmp / 'assets'}",
            f"--checkpoint-base-dir={tmp / 'checkpoints'}",
            "--batch-size=4",
            "--log-interval=1",
        ]
        return tmp, args

    return make


@pytest.fixture(scope="session")
def mini_dataset(request, mini_v21, mini_v30) -> pathlib.Path:
    """Parametrize with indirect=True and "v2.1" / "v3.0"."""
    return {"v2.1": mini_v21, "v3.0": mini_v30}[request.param]


def _read_wandb_records(path: pathlib.Path) -> list:
    """Protobuf records of a ``.wandb`` transaction log (W&B header, then LevelDB-style 32 KiB blocks of
    checksum[4] length[2] type[1] chunks; types 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a wandb transaction log"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too short for a chunk header
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


@pytest.fixture
def read_wandb_run():
    """``read(run_dir) -> (config, tags, history)`` of an offline wandb run directory."""
    import json

    def read(run_dir: pathlib.Path):
        (log,) = pathlib.Path(run_dir).glob("*.wandb")
        config, tags, history = {}, [], []
        for record in _read_wandb_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                tags = list(record.run.tags)
                config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
            elif kind == "config":
                config.update({i.key: json.loads(i.value_json) for i in record.config.update})
            elif kind == "history":
                history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        return config, tags, history

    return read


@pytest.fixture(scope="session")
def jax_demo_checkpoint(tmp_path_factory, mini_v21):
    """The tiny pi0.5 demo config trained 2 steps by the JAX trainer on ``mini_v21`` (norm stats in its assets);
    returns the config, whose ``checkpoint_dir`` is the experiment directory (step ``2``)."""
    from openpi.datasets import stats as _stats
    from openpi.policies import b1k_policy
    from openpi.shared import normalize as _normalize
    from openpi.training import config as _config
    from openpi.training import jax_trainer

    tmp = tmp_path_factory.mktemp("jax_demo_checkpoint")
    name = "pi0_b1k_arm_focused_demo"
    stats = _stats.compute_norm_stats(mini_v21, state_transform=b1k_policy.proprio_to_state, progress=False)
    _normalize.save(tmp / "assets" / name / _config.DEMO_REPO_ID, stats)
    config = _config.cli([
        name,
        "--exp-name=policy",
        f"--data.root={mini_v21}",
        f"--assets-base-dir={tmp / 'assets'}",
        f"--checkpoint-base-dir={tmp / 'checkpoints'}",
        "--batch-size=2",
        "--num-train-steps=2",
        "--save-interval=2",
        "--no-wandb-enabled",
    ])
    jax_trainer.train(config, progress=False)
    return config


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (a rendezvous for multi-process tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
