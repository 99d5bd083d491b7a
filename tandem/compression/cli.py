"""`tandem compress`: run the compression recipe from a YAML config plus key=value overrides."""

from __future__ import annotations

import argparse
import logging

DEFAULT_CONFIG = "configs/compression/smollm2_135m.yaml"
log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress", help="Prune, AWQ, GGUF-quantize, zstd-pack, recover and calibrate a base model.",
        description="Compress a base model stage by stage (source -> prune -> recover -> awq -> gguf_f16 -> "
        "quantize -> zstd -> calibrate) and report size, bits/weight, sparsity, perplexity, ARC-Easy "
        "accuracy and time for every stage. Stages whose config did not change are reused on a rerun.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  tandem compress --config configs/compression/smollm2_135m.yaml\n"
               "  tandem compress prune.structure=unstructured prune.sparsity=0.3 gguf.quant_type=Q4_K_M\n"
               "  tandem compress --validate   # check the config and exit")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"recipe YAML (default {DEFAULT_CONFIG})")
    parser.add_argument("--validate", action="store_true", help="validate the config and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.compression.config import CompressConfig

    try:
        config = load_config(CompressConfig, args.config, args.overrides)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if args.validate:
        print(f"{args.config}: valid")
        return 0
    from tandem.compression.recipe import CompressionError, CompressionRecipe

    recipe = CompressionRecipe(config)
    try:
        recipe.setup()
        recipe.run()
    except CompressionError as exc:
        log.error("%s", exc)
        return 1
    paths = recipe.save()
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
