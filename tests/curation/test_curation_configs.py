"""Every shipped recipe under configs/curation/ validates."""

from pathlib import Path

import pytest
import yaml

from tandem.common.recipe_config import load_config
from tandem.training.curation.config import CurationConfig
from tandem.training.distill.config import DistillConfig
from tandem.training.failures.config import FailureAnalysisConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "curation"


@pytest.mark.parametrize(
    "name, model",
    [
        ("default.yaml", CurationConfig),
        ("distill.yaml", DistillConfig),
        ("failures.yaml", FailureAnalysisConfig),
    ],
)
def test_shipped_configs_validate_and_list_every_field(name, model):
    load_config(model, CONFIGS / name)  # raises ConfigError on any invalid field
    assert set(yaml.safe_load((CONFIGS / name).read_text())) == set(model.model_fields)
