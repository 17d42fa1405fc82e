import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from openpi.datasets import DatasetFormatError
from openpi.datasets import DatasetNotFoundError
from openpi.datasets import LeRobotDataset
from openpi.datasets import LeRobotMetadata
from openpi.datasets import VideoDecodeError
from openpi.datasets import mini_b1k
from openpi.datasets import read_columns
from openpi.datasets import video as _video

BOTH = pytest.mark.parametrize("mini_dataset", ["v2.1", "v3.0"], indirect=True)
HEAD = "observation.images.rgb.head"


def _episodes(root):
    config = mini_b1k.read_config(root)
    return {e: mini_b1k.generate_episode(config, e) for e in mini_b1k.episode_indices(config)}


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@BOTH
@pytest.mark.parametrize("preload", [True, False])
def test_every_frame_reads_back_exactly(mini_dataset, preload):
    written = _episodes(mini_dataset)
    ds = LeRobotDataset(root=mini_dataset, camera_keys=(), preload_max_bytes=2**30 if preload else 0)
    assert ds.episodes == list(written)
    assert len(ds) == sum(e.length for e in written.values())
    for i in range(len(ds)):
        sample = ds[i]
        episode = written[int(sample["episode_index"])]
        f = int(sample["frame_index"])
        np.testing.assert_array_equal(sample["action"], episode.action[f])
        np.testing.assert_array_equal(sample["observation.state"], episode.state[f])
        assert int(sample["task_index"]) == episode.task_index
        assert sample["task"] == ds.meta.tasks[episode.task_index]
    columns = read_columns(mini_dataset, ["action", "observation.state"])
    np.testing.assert_array_equal(columns["action"], np.concatenate([e.action for e in written.values()]))
    np.testing.assert_array_equal(columns["observation.state"], np.concatenate([e.state for e in written.values()]))


@BOTH
def test_action_chunk_crossing_episode_end_is_padded(mini_dataset):
    ds = LeRobotDataset(root=mini_dataset, action_horizon=10, camera_keys=())
    episode = ds.episodes[1]
    length = ds.meta.episode(episode).length
    start = int(np.flatnonzero(ds.frame_locations()[0] == episode)[0])
    sample = ds[start + length - 4]  # 4 real actions, then 6 pads
    actions = ds.episode_data(episode)["action"]
    np.testing.assert_array_equal(sample["action"][:4], actions[-4:])
    np.testing.assert_array_equal(sample["action"][4:], np.repeat(actions[-1:], 6, axis=0))
    assert sample["action_is_pad"].tolist() == [False] * 4 + [True] * 6
    inner = ds[start]
    assert not inner["action_is_pad"].any()
    np.testing.assert_array_equal(inner["action"], actions[:10])


@BOTH
@pytest.mark.parametrize("frame_cache", [True, False])
def test_decoded_frames_match_source_images(mini_dataset, frame_cache):
    written = _episodes(mini_dataset)
    ds = LeRobotDataset(root=mini_dataset, action_horizon=2, frame_cache_max_bytes=2**30 if frame_cache else 0)
    # Later episodes of a v3.0 file start at a from_timestamp offset inside the shared mp4.
    for episode_index in (ds.episodes[0], ds.episodes[2], ds.episodes[-1]):
        episode = written[episode_index]
        for f in (0, episode.length // 2, episode.length - 1):
            for camera in mini_b1k.CAMERAS:
                decoded = ds.decode_frame(episode_index, f"observation.images.rgb.{camera}", f)
                source = episode.images[camera][f]
                assert decoded.shape == source.shape and decoded.dtype == np.uint8
                assert psnr(decoded, source) >= 30.0, (episode_index, f, camera, psnr(decoded, source))
    # The frame is found by timestamp: the wrong frame of a moving sequence scores far lower.
    episode = written[ds.episodes[0]]
    head = episode.images["head"]
    moving = int(np.argmax(np.abs(head[1:].astype(int) - head[:-1]).mean(axis=(1, 2, 3))))
    decoded = ds.decode_frame(ds.episodes[0], HEAD, moving + 1)
    assert psnr(decoded, head[moving + 1]) > psnr(decoded, head[moving])
    sample = ds[5]
    np.testing.assert_array_equal(sample[HEAD], ds.decode_frame(int(sample["episode_index"]), HEAD, 5))


def test_frame_cache_returns_the_decoder_frames_in_any_order(mini_v21):
    cached = LeRobotDataset(root=mini_v21, frame_cache_max_bytes=2**30)
    uncached = LeRobotDataset(root=mini_v21, frame_cache_max_bytes=0)
    for i in np.random.default_rng(0).permutation(len(cached))[:40]:
        episode, frame = cached.locate(int(i))
        np.testing.assert_array_equal(cached.decode_frame(episode, HEAD, frame), uncached.decode_frame(episode, HEAD, frame))
    assert (episode, HEAD) in cached._frames and not uncached._frames


def test_metadata_and_b1k_layout(mini_v21):
    meta = LeRobotMetadata.load(mini_v21)
    assert meta.version == "v2.1" and meta.fps == 30
    assert meta.info["data_path"] == "data/task-{episode_chunk:04d}/episode_{episode_index:08d}.parquet"
    assert meta.episode_indices == [10, 20, 10010, 10020]
    assert meta.data_path(10010) == mini_v21 / "data/task-0001/episode_00010010.parquet"
    assert meta.video_path(10010, HEAD)[0] == mini_v21 / f"videos/task-0001/{HEAD}/episode_00010010.mp4"
    assert meta.video_keys == [f"observation.images.rgb.{c}" for c in mini_b1k.CAMERAS]
    names = pq.read_schema(meta.data_path(10)).names
    for column in ("index", "episode_index", "task_index", "timestamp", "action", "observation.state"):
        assert column in names
    table = pq.read_table(meta.data_path(10))
    assert str(table.schema.field("timestamp").type) == "double"
    assert table.schema.field("observation.state").type.list_size == 256
    assert (mini_v21 / "meta/episodes_stats.jsonl").exists()
    annotation = json.loads((mini_v21 / "annotations/task-0001/episode_00010020.json").read_text())
    assert {s["skill_type"] for s in annotation["skill_annotation"]} & {"navigation"}


def test_v30_layout_and_subset(mini_v30):
    meta = LeRobotMetadata.load(mini_v30)
    assert meta.version == "v3.0"
    files = {meta.episode(e).data_file for e in meta.episode_indices}
    assert len(files) == 2  # 4 episodes, 3 per file
    starts = [meta.video_path(e, HEAD)[1] for e in meta.episode_indices]
    assert starts[0] == 0.0 and starts[1] > 0.0
    ds = LeRobotDataset(root=mini_v30, episodes=[10020, 20], camera_keys=())
    assert ds.episodes == [10020, 20]
    assert int(ds[0]["episode_index"]) == 10020
    columns = read_columns(meta, ["action"], episodes=[10020, 20])
    assert columns.episodes.tolist() == [10020, 20]
    np.testing.assert_array_equal(columns["action"][columns.episode_slice(20)], ds.episode_data(20)["action"])
    assert columns.frame_index[columns.episode_slice(20)].tolist() == list(range(meta.episode(20).length))


def test_h264_video_roundtrip(tmp_path):
    frames = np.stack([np.full((32, 32, 3), 10 * i, np.uint8) for i in range(12)])
    path = tmp_path / "x.mp4"
    _video.write_video(path, frames, fps=30, codec="h264", gop=4)
    reader = _video.VideoReader()
    for i in (7, 2, 11, 3, 4):  # backwards needs a seek, forwards continues decoding
        assert psnr(reader.read(path, i / 30, 0.01), frames[i]) > 35


# --- Clear errors ---


def test_missing_dataset_names_path_and_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        LeRobotDataset("behavior-1k/2025-challenge-demos")
    message = str(err.value)
    assert str(tmp_path / "behavior-1k/2025-challenge-demos") in message
    assert "huggingface-cli download --repo-type dataset behavior-1k/2025-challenge-demos --local-dir" in message


def test_missing_info_json(tmp_path, mini_v21):
    root = tmp_path / "copy"
    shutil.copytree(mini_v21, root)
    (root / "meta/info.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"meta/info\.json is missing"):
        LeRobotDataset(root=root)


def _copy_with_table(tmp_path, mini_v21, edit):
    root = tmp_path / "copy"
    shutil.copytree(mini_v21, root)
    path = LeRobotMetadata.load(root).data_path(10010)
    pq.write_table(edit(pq.read_table(path)), path)
    return root, path


def test_parquet_without_action_column(tmp_path, mini_v21):
    root, path = _copy_with_table(tmp_path, mini_v21, lambda t: t.drop_columns(["action"]))
    ds = LeRobotDataset(root=root, camera_keys=(), preload_max_bytes=0)
    with pytest.raises(DatasetFormatError, match=r"no column\(s\) \['action'\]") as err:
        ds.episode_data(10010)
    assert str(path) in str(err.value)
    with pytest.raises(DatasetFormatError, match=str(path)):
        read_columns(root, ["action"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("preload", [True, False])
def test_non_finite_action_names_episode_and_frame(tmp_path, mini_v21, bad, preload):
    def poison(table):
        actions = table.column("action").combine_chunks()
        values = actions.flatten().to_numpy().copy()
        values[7 * 23 + 15] = bad  # frame 7, dim 15
        import pyarrow as pa

        fixed = pa.FixedSizeListArray.from_arrays(pa.array(values), 23)
        return table.set_column(table.column_names.index("action"), "action", fixed)

    root, _ = _copy_with_table(tmp_path, mini_v21, poison)
    ds = LeRobotDataset(root=root, camera_keys=(), preload_max_bytes=2**30 if preload else 0)
    with pytest.raises(DatasetFormatError, match=r"'action' in episode 10010, frame 7 \(dims \[15\]\)"):
        ds.episode_data(10010)
    with pytest.raises(DatasetFormatError, match="episode 10010, frame 7"):
        read_columns(root, ["action"])


def test_corrupt_or_missing_video_names_file(tmp_path, mini_v21):
    root = tmp_path / "copy"
    shutil.copytree(mini_v21, root)
    meta = LeRobotMetadata.load(root)
    corrupt, _ = meta.video_path(10, HEAD)
    corrupt.write_bytes(b"\x00not an mp4" * 100)
    missing, _ = meta.video_path(20, HEAD)
    missing.unlink()
    ds = LeRobotDataset(root=root)
    with pytest.raises(VideoDecodeError, match=str(corrupt)):
        ds.decode_frame(10, HEAD, 3)
    with pytest.raises(VideoDecodeError, match=f"not found: {missing}"):
        ds.decode_frame(20, HEAD, 3)


def test_b1k_task_chunks_whatever_chunks_size_says(tmp_path, mini_v21):
    """B1K files live under task-XXXX (chunk = episode // 10000) even if info.json's chunks_size differs."""
    root = tmp_path / "copy"
    shutil.copytree(mini_v21, root)
    info = json.loads((root / "meta/info.json").read_text())
    info["chunks_size"] = 1000
    (root / "meta/info.json").write_text(json.dumps(info))
    meta = LeRobotMetadata.load(root)
    assert meta.data_path(10020) == root / "data/task-0001/episode_00010020.parquet"
    assert meta.video_path(10020, HEAD)[0].exists()
    assert len(LeRobotDataset(root=root, camera_keys=())) == LeRobotMetadata.load(mini_v21).total_frames
