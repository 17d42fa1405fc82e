"""The LeRobot writer: what it writes reads back through the project's reader (values, tasks, frames, stats),
in both versions and both styles, and bad episodes fail before anything is written."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpi.datasets import LeRobotDataset
from openpi.datasets import LeRobotMetadata
from openpi.datasets import lerobot_writer
from openpi.datasets import read_columns

CAMERA = "observation.images.top"
TASKS = ("stack the cups", "open the lid")


def _episodes(seed: int = 0, count: int = 5):
    """(state [T, 3], action [T, 2], frames [T, 16, 16, 3], task) with distinct lengths and flat-colour frames."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(count):
        length = 6 + 3 * e
        frames = np.zeros((length, 16, 16, 3), np.uint8)
        frames[..., 0] = (20 * np.arange(length) % 250)[:, None, None]  # frame t is red level 20·t
        out.append((rng.normal(size=(length, 3)), rng.normal(size=(length, 2)), frames, TASKS[e % 2]))
    return out


def _write(root, episodes, **kwargs):
    with lerobot_writer.LeRobotWriter(
        root,
        fps=10,
        robot_type="toy",
        features={"observation.state": 3, "action": 2},
        videos={CAMERA: (16, 16)},
        **kwargs,
    ) as writer:
        for state, action, frames, task in episodes:
            writer.add_episode(
                columns={"observation.state": state, "action": action}, videos={CAMERA: frames}, task=task
            )
    return root


@pytest.mark.parametrize(
    ("version", "style"), [("v2.1", "lerobot"), ("v3.0", "lerobot"), ("v2.1", "b1k"), ("v3.0", "b1k")]
)
def test_written_dataset_reads_back(tmp_path, version, style):
    episodes = _episodes()
    root = _write(tmp_path / "d", episodes, version=version, style=style, episodes_per_file=2)
    meta = LeRobotMetadata.load(root)
    assert meta.version == version and meta.fps == 10 and meta.video_keys == [CAMERA]
    assert meta.tasks == {0: TASKS[0], 1: TASKS[1]} and meta.episode_indices == [0, 1, 2, 3, 4]
    assert [meta.episode(e).length for e in range(5)] == [len(a) for _, a, _, _ in episodes]
    data = read_columns(root, ["observation.state", "action", "task_index"])
    np.testing.assert_array_equal(data["action"], np.concatenate([a for _, a, _, _ in episodes]).astype(np.float32))
    np.testing.assert_array_equal(
        data["task_index"], np.concatenate([[e % 2] * len(a) for e, (_, a, _, _) in enumerate(episodes)])
    )
    dataset = LeRobotDataset(root=root, action_horizon=2)
    for e, (state, action, _, task) in enumerate(episodes):
        start = sum(len(a) for _, a, _, _ in episodes[:e])
        sample = dataset[start + 4]
        np.testing.assert_allclose(sample["observation.state"], state[4], rtol=1e-6)
        np.testing.assert_allclose(sample["action"], action[4:6], rtol=1e-6)
        assert sample["task"] == task
        assert abs(int(sample[CAMERA][..., 0].mean()) - 80) <= 3  # frame 4 of its own episode, not another's
    if version == "v2.1":
        files = sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*.parquet"))
        assert files == [f"data/chunk-000/episode_{e:06d}.parquet" for e in range(5)]
        rows = [json.loads(line) for line in (root / "meta/episodes_stats.jsonl").read_text().splitlines()]
        stats = rows[3]["stats"]["observation.state"]
        np.testing.assert_allclose(stats["std"], episodes[3][0].astype(np.float32).std(0), rtol=1e-5)
        assert stats["count"] == [len(episodes[3][0])]
    else:
        assert len(list((root / "data").rglob("*.parquet"))) == 3  # 2 + 2 + 1 episodes
        stats = json.loads((root / "meta/stats.json").read_text())["action"]
        np.testing.assert_allclose(stats["max"], np.concatenate([a for _, a, _, _ in episodes]).max(0), rtol=1e-6)
    table = pq.read_table(meta.data_path(2))
    frames = table.column("index").to_numpy()[table.column("episode_index").to_numpy() == 2]
    local = style == "b1k" and version == "v2.1"  # B1K 2025 counts `index` within the episode
    assert frames[0] == (0 if local else 6 + 9) and ("frame_index" in table.column_names) != local
    assert table.column_names[0] == ("observation.state" if style == "lerobot" else "index")


def test_sparse_episode_indices_chunks_and_task_names(tmp_path):
    root = tmp_path / "b1k"
    with lerobot_writer.LeRobotWriter(
        root,
        fps=30,
        robot_type="R1Pro",
        features={"action": 2},
        style="b1k",
        chunks_size=10000,
        data_path="data/task-{episode_chunk:04d}/episode_{episode_index:08d}.parquet",
        tasks=TASKS,
        task_names={TASKS[1]: "open_lid"},
    ) as writer:
        for episode_index in (10, 20, 10010):
            writer.add_episode(
                columns={"action": np.ones((4, 2))}, task=TASKS[episode_index // 10000], episode_index=episode_index
            )
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_chunks"] == 2 and info["video_path"] is None and "task_index" not in info["features"]
    assert (root / "data/task-0001/episode_00010010.parquet").exists()
    assert LeRobotMetadata.load(root).episode_indices == [10, 20, 10010]
    rows = [json.loads(line) for line in (root / "meta/tasks.jsonl").read_text().splitlines()]
    assert rows == [{"task_index": 0, "task": TASKS[0]}, {"task_index": 1, "task_name": "open_lid", "task": TASKS[1]}]


def test_bad_episodes_and_roots_are_refused(tmp_path):
    writer = lerobot_writer.LeRobotWriter(tmp_path / "w", fps=10, robot_type="toy", features={"action": 2})
    with pytest.raises(ValueError, match=r"'action' must be \[T, 2\]"):
        writer.add_episode(columns={"action": np.ones((4, 3))}, task="t")
    with pytest.raises(ValueError, match="expects columns"):
        writer.add_episode(columns={"state": np.ones((4, 2))}, task="t")
    writer.add_episode(columns={"action": np.ones((4, 2))}, task="t", episode_index=5)
    with pytest.raises(ValueError, match="must increase"):
        writer.add_episode(columns={"action": np.ones((4, 2))}, task="t", episode_index=5)
    writer.close()
    with pytest.raises(FileExistsError, match="--overwrite"):
        lerobot_writer.LeRobotWriter(tmp_path / "w", fps=10, robot_type="toy", features={"action": 2})
    with pytest.raises(ValueError, match="No episodes"):
        lerobot_writer.LeRobotWriter(tmp_path / "empty", fps=10, robot_type="toy", features={"action": 2}).close()
    with (
        pytest.raises(RuntimeError),
        lerobot_writer.LeRobotWriter(tmp_path / "failed", fps=10, robot_type="toy", features={"action": 2}) as failed,
    ):
        failed.add_episode(columns={"action": np.ones((4, 2))}, task="t")
        raise RuntimeError("generator crashed")
    assert not (tmp_path / "failed/meta/info.json").exists()
