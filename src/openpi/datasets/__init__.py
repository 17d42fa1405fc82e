"""Native LeRobot dataset access and writing (v2.1 and v3.0), and the miniature dataset generators."""

from openpi.datasets.columns import ColumnData
from openpi.datasets.columns import read_columns
from openpi.datasets.lerobot import LeRobotDataset
from openpi.datasets.lerobot_meta import DatasetFormatError
from openpi.datasets.lerobot_meta import DatasetNotFoundError
from openpi.datasets.lerobot_meta import LeRobotMetadata
from openpi.datasets.lerobot_meta import resolve_root
from openpi.datasets.lerobot_writer import LeRobotWriter
from openpi.datasets.video import VideoDecodeError

__all__ = [
    "ColumnData",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "LeRobotDataset",
    "LeRobotMetadata",
    "LeRobotWriter",
    "VideoDecodeError",
    "read_columns",
    "resolve_root",
]
