"""Recipe configs: a YAML file, overridden by `key=value` CLI arguments, validated by pydantic.

Validation happens before any heavy work starts, and every error is reported at once.
"""

from __future__ import annotations

import argparse
import difflib
import re
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, ValidationError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class ConfigError(Exception):
    """A recipe config is missing, unreadable or invalid."""


class RecipeModel(BaseModel):
    """Base of every config section read from YAML (recipes, `tandem up`, pipelines): an unknown
    key is an error that names it, so a typo such as `sft.max_step=20` fails before any work
    instead of being silently ignored."""

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
        problems = "\n".join(f"  {'.'.join(map(str, e['loc']))}: {_message(model, e)}" for e in exc.errors())
        raise ConfigError(f"invalid {model.__name__} config:\n{problems}") from exc


def _message(model: type[BaseModel], error: Any) -> str:
    """pydantic's message, except that an unknown key also names the keys its section accepts
    (and the closest one, for a typo)."""
    if error["type"] != "extra_forbidden":
        return error["msg"]
    section = _section_at(model, error["loc"][:-1])
    if section is None:
        return "unknown key"
    known = sorted(section.model_fields)
    close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}{section.__name__} accepts: {', '.join(known)}"


def _section_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class found by following `loc` (field names, list indexes, dict keys) from `model`."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _model_inside(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_inside(annotation: Any) -> Any:
    """The BaseModel class in `X`, `X | None`, `list[X]` or `dict[str, X]`, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _model_inside(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def dump_config(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")


def add_override_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """Positional `KEY=VALUE ...` recipe overrides (dotted keys), collected into `args.overrides`:
    the one override syntax of every `tandem` command."""
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"Override config fields (dotted keys), e.g. {example}")


OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")


def split_overrides(arguments: list[str]) -> tuple[list[str], list[str]]:
    """Split positional arguments into `key=value` overrides and the rest (e.g. input files), for a
    command whose positional arguments take both: an argument is an override when it starts with a
    dotted name and `=`."""
    overrides = [a for a in arguments if OVERRIDE.match(a)]
    return overrides, [a for a in arguments if not OVERRIDE.match(a)]
