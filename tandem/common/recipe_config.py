"""Recipe configs: a YAML file, overridden by `key=value` CLI arguments, validated by pydantic.

Validation happens before any heavy work starts, and every error is reported at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, ValidationError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class ConfigError(Exception):
    """A recipe config is missing, unreadable or invalid."""


class RecipeModel(BaseModel):
    """Base of every recipe config section: an unknown key is an error that names it, so a typo
    such as `sft.max_step=20` fails before any work instead of being silently ignored."""

    model_config = ConfigDict(extra="forbid")


def load_config(model: type[ConfigT], path: str | Path | None, overrides: list[str] | None = None,
                with_defaults: bool = False) -> ConfigT:
    """Load `path` (YAML), apply dotted `key=value` overrides, validate against `model`.

    `with_defaults` starts from the model's own defaults, so an override of one nested key keeps
    its siblings (e.g. `base_model.slots=8` keeps `base_model.port`)."""
    base: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            base = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    bad = [o for o in overrides or [] if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got: {', '.join(bad)}")
    layers = [OmegaConf.create(model().model_dump(mode="json"))] if with_defaults else []
    layers += [OmegaConf.create(base), OmegaConf.from_dotlist(list(overrides or []))]
    merged = OmegaConf.merge(*layers)
    data = OmegaConf.to_container(merged, resolve=True)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid {model.__name__} config:\n{problems}") from exc


def dump_config(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")


def add_override_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE ...`: recipe-field overrides, collected into `args.overrides`."""
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help=f"Override recipe fields, e.g. --set {example}")
