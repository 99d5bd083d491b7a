"""`tandem build`'s folders are set by its flags only: an `artifacts_dir=` override would send the
modifiers to one folder and the router, escalation and reports to another."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tandem.training.build import load_domain_configs


def _args(*overrides: str) -> argparse.Namespace:
    return argparse.Namespace(domains="code", overrides=list(overrides), artifacts=Path("out/artifacts"),
                              work_dir=Path("out/work"), config_dir=Path("configs/modifiers"))


@pytest.mark.parametrize("override", ["artifacts_dir=elsewhere", "work_dir=elsewhere", "code:sft.output_dir=x"])
def test_a_folder_override_is_refused_with_the_flag_to_use(override):
    with pytest.raises(SystemExit, match="set it with --"):
        load_domain_configs(_args(override))


def test_the_flags_set_every_domain_folder_and_other_overrides_still_apply():
    (config,) = load_domain_configs(_args("sft.max_steps=3"))
    assert config.artifacts_dir == Path("out/artifacts") and config.work_dir == Path("out/work/code")
    assert config.sft.max_steps == 3
