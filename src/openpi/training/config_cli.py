"""The command line of every tool that takes a config: ``[--config-name=]NAME [--field.sub-field VALUE ...]``
(openpi's positional ``NAME`` too), every field overridable, and loss overrides that would change nothing refused.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import pathlib
import sys
from typing import Any
import warnings

import tyro

from openpi.shared import cli as _cli
from openpi.shared import loss_weighting as _lw
from openpi.training import registry
from openpi.training.schema import TrainConfig


def with_config_overrides(args: Any, overrides: Sequence[str]) -> Any:
    """``args`` carrying the command line's TrainConfig overrides (the options the tool itself does not know);
    they need a config to apply to."""
    if not overrides:
        return args
    if getattr(args, "config_name", None) is None:
        _cli.fail(f"unrecognized options {' '.join(overrides)} (config overrides need --config-name).")
    return dataclasses.replace(args, config_overrides=tuple(overrides))


def _split_config_name(args: list[str]) -> tuple[str | None, list[str]]:
    """Finds the config name given as ``--config-name=NAME``, ``--config-name NAME`` or openpi's positional
    ``NAME`` (the first argument that is not an option), and returns it with the remaining arguments."""
    rest = list(args)
    for i, arg in enumerate(rest):
        if arg.startswith("--config-name=") or arg.startswith("--config_name="):
            return arg.split("=", 1)[1], rest[:i] + rest[i + 1 :]
        if arg in ("--config-name", "--config_name") and i + 1 < len(rest):
            return rest[i + 1], rest[:i] + rest[i + 2 :]
    if rest and not rest[0].startswith("-"):
        return rest[0], rest[1:]
    return None, rest


def cli(args: Sequence[str] | None = None, *, description: str | None = None) -> TrainConfig:
    """Parses ``[--config-name=]NAME [--field.sub-field=VALUE ...]`` into a validated ``TrainConfig``."""
    args = list(sys.argv[1:] if args is None else args)
    name, rest = _split_config_name(args)
    if name is None:
        listing = "\n  ".join(sorted(registry.configs()))
        prog = pathlib.Path(sys.argv[0]).name
        message = (
            f"usage: {prog} [--config-name=]NAME [overrides ...] [--help]\n\nNAME is a registered config, "
            f"path/to/file.py:NAME or package.module:NAME (a TrainConfig or a function returning one).\n\n"
            f"Configs:\n  {listing}\n"
        )
        if any(a in ("-h", "--help") for a in rest):
            print((description + "\n\n" if description else "") + message)
            raise SystemExit(0)
        _cli.fail("no config name given.\n" + message.rstrip("\n"))
    try:
        base = registry.get_config(name)
    except ValueError as error:
        _cli.fail(str(error))
    config = tyro.cli(TrainConfig, default=base, args=rest, description=description)
    _check_loss_overrides(base, config, rest)
    if config.resume_from and "{exp_name}" in config.resume_from:
        config = dataclasses.replace(config, resume_from=config.resume_from.format(exp_name=config.exp_name))
    return config


def _check_loss_overrides(base: TrainConfig, config: TrainConfig, args: Sequence[str]) -> None:
    """An override that sets a loss field the strategy ignores is an error (it would change nothing); a config
    field that a strategy override made unused gets a warning."""
    unused = _lw.unused_fields(config.model)
    given = {a.split("=", 1)[0].removeprefix("--model.").replace("-", "_") for a in args if a.startswith("--model.")}
    for field, reason in unused.items():
        if field in given:
            _cli.fail(f"--model.{field.replace('_', '-')} has no effect: {reason}.")
    for field in unused.keys() - _lw.unused_fields(base.model).keys():
        warnings.warn(f"{config.name}'s model.{field} is not used: {unused[field]}.", UserWarning,
                      stacklevel=2)
