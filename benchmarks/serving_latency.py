"""Policy-server overhead over loopback: round trip per protocol vs the model call alone, and throughput with
several concurrent clients (and one batched client).

By default trains the tiny demo config 2 steps on a miniature B1K dataset (a few minutes on CPU) and serves that;
``--config-name/--checkpoint`` serve your own. Run: ``python benchmarks/serving_latency.py``.

Overhead = median round trip − median ``Policy.infer`` on the same observation, the two interleaved (clients in
this process, over 127.0.0.1); and per request: round trip − the reply's ``policy_timing.infer_ms`` (openpi: the
``Policy.infer`` call) or ``server_timing.infer_ms`` (behavior: observation mapping + chunk executor + model). The BEHAVIOR server replans every step here (``replan_every=1``) so each request runs one model call,
like an openpi request; with chunking most BEHAVIOR requests run no model call at all.
"""

import concurrent.futures
import dataclasses
import pathlib
import statistics
import tempfile
import time

import numpy as np
import torch
import tyro
from websockets.sync import client as ws_client

from openpi.datasets import lerobot
from openpi.datasets import mini_b1k
from openpi.datasets import stats as _stats
from openpi.policies import b1k_policy
from openpi.policies import policy_config
from openpi.serving import behavior
from openpi.serving import chunking
from openpi.serving import msgpack_numpy
from openpi.serving import websocket_server
from openpi.shared import normalize as _normalize
from openpi.training import config as _config
from openpi.training import jax_trainer


@dataclasses.dataclass(frozen=True)
class Args:
    config_name: str = "pi0_b1k_arm_focused_demo"
    checkpoint: str | None = None
    """Serve this checkpoint; default: train the demo config 2 steps on a miniature dataset first."""
    requests: int = 30
    """Timed requests per measurement (after 3 warm-up requests)."""
    clients: int = 4
    """Concurrent clients for the throughput figure (and the batch size of the batched client)."""
    torch_threads: int = 1


def _demo_checkpoint(tmp: pathlib.Path) -> tuple[_config.TrainConfig, pathlib.Path]:
    root = tmp / "mini_b1k"
    mini_b1k.write_mini_b1k(
        mini_b1k.MiniB1KConfig(root=root, num_tasks=2, episodes_per_task=2, frames_per_episode=60, image_size=64),
        progress=False,
    )
    name = "pi0_b1k_arm_focused_demo"
    stats = _stats.compute_norm_stats(root, state_transform=b1k_policy.proprio_to_state, progress=False)
    _normalize.save(tmp / "assets" / name / _config.DEMO_REPO_ID, stats)
    config = _config.cli([
        name, "--exp-name=serving", f"--data.root={root}", f"--assets-base-dir={tmp / 'assets'}",
        f"--checkpoint-base-dir={tmp / 'checkpoints'}", "--batch-size=2", "--num-train-steps=2",
        "--save-interval=2", "--no-wandb-enabled",
    ])  # fmt: skip
    jax_trainer.train(config, progress=False)
    return config, root


def _omnigibson_obs(sample: dict) -> dict:
    obs = {}
    for key, link in behavior.CAMERA_LINKS.items():
        rgb = np.asarray(sample[key])
        rgb = np.transpose(rgb, (1, 2, 0)) if rgb.shape[0] == 3 else rgb
        rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
        obs[behavior.camera_key(link)] = np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], -1)
    obs[behavior.proprio_key()] = np.asarray(sample["observation.state"], np.float32)
    obs[behavior.TASK_ID_KEY] = np.array([int(sample["task_index"])], np.int64)
    return obs


def _round_trips(port: int, request: dict, n: int, between=None) -> tuple[list[float], list[float]]:
    """Round-trip times (ms) of n requests after 3 warm-ups on one connection, and the server-measured time
    of each (policy_timing, else server_timing); ``between()`` runs (untimed) after each request."""
    frame = msgpack_numpy.packb(request)
    times, policy_times = [], []
    with ws_client.connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
        ws.recv()  # metadata
        for i in range(n + 3):
            start = time.perf_counter()
            ws.send(frame)
            reply = ws.recv()
            elapsed = (time.perf_counter() - start) * 1000
            if isinstance(reply, str):
                raise RuntimeError(f"Server error:\n{reply}")
            if i >= 3:
                times.append(elapsed)
                timing = msgpack_numpy.unpackb(reply)
                policy_times.append(timing.get("policy_timing", timing["server_timing"])["infer_ms"])
            if between is not None:
                between()
    return times, policy_times


def main(args: Args) -> None:
    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint is None:
            print("training the demo config 2 steps on a miniature dataset ...", flush=True)
            train_config, root = _demo_checkpoint(pathlib.Path(tmp))
            checkpoint = train_config.checkpoint_dir
        else:
            train_config, checkpoint = _config.get_config(args.config_name), args.checkpoint
            root = train_config.data_config().root
        policy = policy_config.create_trained_policy(train_config, checkpoint)
        dataset = lerobot.LeRobotDataset(root=root)
        keys = [*behavior.CAMERA_LINKS, "observation.state", "task"]
        sample = {k: dataset[5][k] for k in keys}
        raw = {**sample, "task_index": dataset[5]["task_index"]}

        model_ms = []

        def model_call():  # interleaved with the round trips, so machine load drifts hit both alike
            start = time.perf_counter()
            policy.infer(sample)
            model_ms.append((time.perf_counter() - start) * 1000)

        observations = behavior.BehaviorObservations(behavior.load_task_prompts(root))
        servers = [
            websocket_server.PolicyServer(policy, protocol="openpi", host="127.0.0.1", port=0),
            websocket_server.PolicyServer(
                policy, protocol="behavior", host="127.0.0.1", port=0, observations=observations,
                chunking=chunking.ChunkingConfig(mode="receding", replan_every=1),
            ),
        ]  # fmt: skip
        with websocket_server.running(*servers) as (openpi_port, behavior_port):
            print(f"{'protocol':<10} {'round trip ms':>14} {'model alone ms':>15} {'overhead ms':>12} {'overhead %':>11}")
            for name, port, request in (
                ("openpi", openpi_port, sample),
                ("behavior", behavior_port, _omnigibson_obs(raw)),
            ):
                model_ms.clear()
                times, policy_times = _round_trips(port, request, args.requests, between=model_call)
                rtt, model = statistics.median(times), statistics.median(model_ms[3:])
                print(f"{name:<10} {rtt:>14.1f} {model:>15.1f} {rtt - model:>12.2f} {100 * (rtt - model) / model:>10.1f}%")
                # The same request's own time measured in the server: robust to load drifting between calls.
                paired = statistics.median(t - p for t, p in zip(times, policy_times))
                which = "policy_timing" if name == "openpi" else "server_timing"
                print(f"{'':<10} per request: round trip − its {which}.infer_ms = {paired:.2f} ms "
                      f"({100 * paired / statistics.median(policy_times):.1f}%)")  # fmt: skip

            n = args.clients
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                list(pool.map(lambda _: _round_trips(openpi_port, sample, args.requests)[0], range(n)))
            elapsed = time.perf_counter() - start
            concurrent_rate = n * (args.requests + 3) / elapsed
            batch_rtt = statistics.median(_round_trips(openpi_port, {"batch": [sample] * n}, args.requests)[0])
            print(f"\nthroughput, openpi protocol ({n} concurrent clients): {concurrent_rate:.1f} observations/s "
                  f"(one client: {1000 / statistics.median(_round_trips(openpi_port, sample, args.requests)[0]):.1f}/s)")  # fmt: skip
            print(f"one batched client ({n} observations per request): {1000 * n / batch_rtt:.1f} observations/s, "
                  f"{batch_rtt:.1f} ms per request")  # fmt: skip
            behavior_kib = len(msgpack_numpy.packb(_omnigibson_obs(raw))) / 1024
            print(f"observation frame: {len(msgpack_numpy.packb(sample)) / 1024:.0f} KiB (openpi), "
                  f"{behavior_kib:.0f} KiB (behavior)")  # fmt: skip

if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
