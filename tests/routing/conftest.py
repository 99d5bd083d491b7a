"""A router trained on a small slice of the real data, shared by the routing tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from routing_helpers import small_config

from tandem.training.routing.config import RouterRecipeConfig


@dataclass
class TrainedRouter:
    config: RouterRecipeConfig
    report: dict[str, Any]

    @property
    def artifacts_dir(self) -> Path:
        return self.config.artifacts_dir


@pytest.fixture(scope="session")
def trained_router(tmp_path_factory) -> TrainedRouter:
    from tandem.training.routing.train import run

    config = small_config(tmp_path_factory.mktemp("router-artifacts"))
    return TrainedRouter(config, run(config, measure_latency=False))
