"""Video frames by timestamp with PyAV, and a small mp4 writer for the miniature datasets.

Decoding seeks to the keyframe at or before the timestamp and decodes forward to the frame whose
presentation time matches. Each process keeps its own open containers (forked data-loader workers must
not share a demuxer), and a container remembers where its decoder stopped so that reading the next frames
of the same video continues without a new seek.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
import dataclasses
import os
import pathlib

import av
import numpy as np

# Encoders by codec family, in order of preference; which exist depends on the PyAV/FFmpeg build.
ENCODERS = {"hevc": ("libx265", "hevc"), "av1": ("libsvtav1", "libaom-av1", "librav1e"), "h264": ("libx264", "h264")}


class VideoDecodeError(RuntimeError):
    """A video file is missing, unreadable, or has no frame at the requested time."""


def pick_encoder(codec: str) -> str:
    """The first encoder of ``codec`` ('hevc', 'av1', 'h264') that this PyAV build provides."""
    if codec not in ENCODERS:
        raise ValueError(f"Unknown codec '{codec}'; choose one of {sorted(ENCODERS)}.")
    for name in ENCODERS[codec]:
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
            except (av.error.FFmpegError, ValueError):
                continue
            return name
    raise ValueError(f"No encoder for '{codec}' in this PyAV build (looked for {ENCODERS[codec]}).")


def write_video(path: pathlib.Path, frames: np.ndarray, fps: int, codec: str = "hevc", gop: int = 30, crf: int = 18):
    """Encodes uint8 [T, H, W, 3] RGB frames to ``path`` as yuv420p; frame i has pts i / fps."""
    encoder = pick_encoder(codec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        options = {"crf": str(crf), "g": str(gop)}
        if encoder == "libx265":
            options["x265-params"] = "log-level=error"
        elif encoder == "libsvtav1":
            options["preset"] = "12"
        elif encoder == "libx264":
            options["preset"] = "veryfast"
        stream.options = options
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@dataclasses.dataclass
class _OpenVideo:
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    frames: Iterator[av.VideoFrame] | None = None  # decoder position after the last read
    last_time: float = -np.inf  # presentation time of the last frame returned by `frames`


class VideoReader:
    """Decodes single frames by timestamp, keeping up to ``max_open`` containers open per process."""

    # Continue decoding instead of seeking when the target is at most this far after the last frame.
    _FORWARD_WINDOW_S = 1.0

    def __init__(self, max_open: int = 64):
        self._max_open = max_open
        self._open: OrderedDict[str, _OpenVideo] = OrderedDict()
        self._pid = os.getpid()

    def close(self) -> None:
        for video in self._open.values():
            video.container.close()
        self._open.clear()

    def _get(self, path: pathlib.Path) -> _OpenVideo:
        if os.getpid() != self._pid:  # forked worker: containers inherited from the parent are not ours
            self._open.clear()
            self._pid = os.getpid()
        key = str(path)
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        if not path.exists():
            raise VideoDecodeError(f"Video file not found: {path}")
        try:
            container = av.open(key)
            stream = container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as e:
            raise VideoDecodeError(f"Cannot open video {path}: {e}") from e
        stream.thread_type = "AUTO"
        video = _OpenVideo(container, stream)
        self._open[key] = video
        if len(self._open) > self._max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.container.close()
        return video

    def read(self, path: pathlib.Path | str, timestamp: float, tolerance_s: float) -> np.ndarray:
        """The uint8 [H, W, 3] RGB frame shown at ``timestamp`` seconds (within ``tolerance_s``)."""
        path = pathlib.Path(path)
        video = self._get(path)
        try:
            return self._read(video, timestamp, tolerance_s)
        except av.error.FFmpegError as e:
            self._open.pop(str(path), None)
            video.container.close()
            raise VideoDecodeError(f"Cannot decode {path} at t={timestamp:.4f}s: {e}") from e
        except VideoDecodeError as e:
            raise VideoDecodeError(f"{path}: {e}") from None

    def _read(self, video: _OpenVideo, timestamp: float, tolerance_s: float) -> np.ndarray:
        ahead = video.last_time + tolerance_s < timestamp <= video.last_time + self._FORWARD_WINDOW_S
        if video.frames is not None and ahead:
            image = self._decode_forward(video, timestamp, tolerance_s)
            if image is not None:
                return image
        # Some encoders' keyframe flags let the demuxer land after the target: step further back until it fits.
        for backoff in (0.0, 1.0, 4.0, float("inf")):
            stream = video.stream
            target = max(0.0, timestamp - backoff)
            video.container.seek(int(target / stream.time_base), stream=stream, backward=True)
            video.frames = video.container.decode(stream)
            video.last_time = -np.inf
            image = self._decode_forward(video, timestamp, tolerance_s)
            if image is not None:
                return image
            if target == 0.0:
                break
        raise VideoDecodeError(f"no frame at t={timestamp:.4f}s (last decoded t={video.last_time:.4f}s)")

    @staticmethod
    def _decode_forward(video: _OpenVideo, timestamp: float, tolerance_s: float) -> np.ndarray | None:
        """Decodes on to the frame at ``timestamp``; None when the decoder is already past it or the video ends."""
        for frame in video.frames:
            video.last_time = float(frame.time)
            if frame.time >= timestamp - tolerance_s:
                if frame.time > timestamp + tolerance_s:
                    break
                return frame.to_ndarray(format="rgb24")
        video.frames = None
        return None
