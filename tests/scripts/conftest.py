"""A miniature B1K dataset (no video) with planted structure, and the tool scripts loaded as modules."""

import importlib.util
import json
import pathlib

import pytest

from openpi.datasets import mini_b1k

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def load_script():
    """Imports ``scripts/<name>.py`` as a module (scripts are not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> pathlib.Path:
    config = mini_b1k.MiniB1KConfig(
        root=tmp_path_factory.mktemp("mini_b1k") / "data",
        num_tasks=3,
        episodes_per_task=8,
        frames_per_episode=600,
        video=False,
        seed=7,
    )
    return mini_b1k.write_mini_b1k(config, progress=False)


@pytest.fixture(scope="session")
def ground_truth(mini_root) -> dict:
    return json.loads((mini_root / mini_b1k.GROUND_TRUTH_FILE).read_text())
