"""Validate an Axolotl YAML with Axolotl's own schema. Runs in axolotl's virtualenv, not Tandem's:

    <axolotl-venv>/bin/python axolotl_check.py config.yaml

Prints the normalized config as one JSON line; exits 1 with Axolotl's messages on stderr.
"""

import json
import sys

import yaml
from axolotl.utils.config import validate_config
from axolotl.utils.dict import DictDefault


def main(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    try:
        cfg = validate_config(DictDefault(raw), capabilities={"bf16": True, "fp8": False, "n_gpu": 1,
                                                              "n_node": 1, "compute_capability": "sm_90"},
                              env_capabilities={"torch_version": "2.13.0"})
    except Exception as exc:  # noqa: BLE001 -- pydantic ValidationError or Axolotl's ValueError: report, don't trace
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(dict(cfg), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
