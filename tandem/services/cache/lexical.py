"""The lexical tier: a reworded question whose differing words WordNet says mean the same.

At the shipped threshold (0.995 on the content words) a semantic hit needs the same content words;
"Who wrote Hamlet?" / "Who is the author of Hamlet?" (cosine 0.83) and "What is the boiling point of
water?" / "At what temperature does water boil?" (0.84) miss, and the `swap` and `differing` guards
would refuse them at any threshold: an embedding cannot tell "wrote" -> "author" from "prey" ->
"predator" (both are a one-word replacement by a related word). WordNet can: it records synonyms,
derivations and antonyms as relations between words, and defines its compounds.

`lexical_match(a, b)` accepts a pair only when both sides have content words (by stem) the other lacks
and every such differing word of each side is accounted for by the other side's differing words through WordNet, and no pair of
them is an antonym pair:

- *synonym*: the two words share a synset (among each word's first `senses` senses, WordNet's most
  frequent first);
- *derivation*: one word's synset has a derivational link from that word to a synset holding the other
  ("write" -> "writer", whose synset holds "author");
- *definition*: a WordNet compound of adjacent words on one side ("boiling point") whose gloss ("the
  temperature at which a liquid boils at sea level", negation-free) or hypernyms hold the other side's
  differing words ("temperature"): the compound's differing words and those words are accounted for.

Antonyms: WordNet's antonym links of either word's synsets (and, for adjectives, of the heads of their
similar-to clusters) naming the other word refuse the pair whatever else relates them.

This is the tier's guard in place of `swap` and `differing`; every other guard still runs (`Verifier`),
and the pair must reach the tier's own cosine threshold (`SemanticCacheSettings.lexical_threshold`).
"""

from __future__ import annotations

from functools import lru_cache

from tandem.services.cache.lexicon import NEGATIONS, STOPWORDS
from tandem.services.cache.verify import Prompt, differing_words
from tandem.services.cache.wordnet import POS, WordNet, wordnet

DEFAULT_SENSES = 1


@lru_cache(maxsize=65_536)
def forms(word: str) -> frozenset[str]:
    """The word and its WordNet base forms in every part of speech."""
    wn = wordnet()
    return frozenset([word, *(lemma for pos in POS for lemma in wn.lemmas(word, pos))])


@lru_cache(maxsize=65_536)
def related_words(word: str, senses: int) -> frozenset[str]:
    """Lemmas sharing one of the word's first `senses` synsets (per part of speech and base form), and
    those of the synsets its derivational links from that word reach."""
    wn = wordnet()
    out: set[str] = set()
    for pos in POS:
        for lemma in wn.lemmas(word, pos):
            for offset in wn.senses(lemma, pos)[:senses]:
                synset = wn.synset((pos, offset))
                out.update(synset.lemmas)
                position = synset.lemmas.index(lemma) + 1 if lemma in synset.lemmas else -1
                for symbol, target, source, _ in synset.pointers:
                    if symbol == "+" and source in (0, position):
                        out.update(wn.synset(target).lemmas)
    return frozenset(out)


@lru_cache(maxsize=65_536)
def antonyms(word: str) -> frozenset[str]:
    """Lemmas WordNet links to any synset of the word as antonyms (all senses), directly or through the
    head of an adjective's similar-to cluster, and the members of the antonyms' clusters."""
    wn = wordnet()
    out: set[str] = set()
    for synset in wn.synsets(word):
        heads = [synset] + [wn.synset(t) for s, t, _, _ in synset.pointers if s == "&"]
        for head in heads:
            for symbol, target, _, _ in head.pointers:
                if symbol == "!":
                    opposite = wn.synset(target)
                    out.update(opposite.lemmas)
                    out.update(lemma for s, t, _, _ in opposite.pointers if s == "&" for lemma in wn.synset(t).lemmas)
    return frozenset(out)


def _opposed(x: str, y: str) -> bool:
    return bool(forms(y) & antonyms(x)) or bool(forms(x) & antonyms(y))


def _related(x: str, y: str, senses: int) -> bool:
    return bool(forms(y) & related_words(x, senses)) or bool(forms(x) & related_words(y, senses))


@lru_cache(maxsize=65_536)
def _definition(compound: str) -> frozenset[str] | None:
    """The base forms of the content words of a noun compound's first-sense gloss and its hypernyms' lemmas;
    None when the compound is not in WordNet or its gloss holds a negation ("absent: not present")."""
    wn = wordnet()
    senses = wn.senses(compound, "n")
    if not senses:
        return None
    synset = wn.synset(("n", senses[0]))
    gloss = synset.gloss.split(";")[0].lower()
    words = [w.strip(".,()'\"`") for w in gloss.split()]
    if any(w in NEGATIONS or w.startswith("non") for w in words):
        return None
    out = {f for w in words if w and w not in STOPWORDS for f in forms(w)}
    for symbol, target, _, _ in synset.pointers:
        if symbol in ("@", "@i"):
            out.update(wn.synset(target).lemmas)
    return frozenset(out)


def _compounds(p: Prompt, differing: set[str]) -> list[tuple[set[str], frozenset[str]]]:
    """Compounds of 2-3 adjacent words holding a differing word, with their definitions."""
    wn = wordnet()
    out = []
    tokens = p.tokens
    for n in (3, 2):
        for i in range(len(tokens) - n + 1):
            words = tokens[i:i + n]
            if not differing & set(words) or not all(w[:1].isalpha() for w in words):
                continue
            for last in wn.lemmas(words[-1], "n") or [words[-1]]:
                definition = _definition("_".join([*words[:-1], last]))
                if definition is not None:
                    out.append((differing & set(words), definition))
                    break
    return out


def lexical_match(a: Prompt, b: Prompt, senses: int = DEFAULT_SENSES) -> bool:
    """Do the content words each prompt has alone mean the same, by WordNet (module docstring)?"""
    only_a, only_b = differing_words(a, b)
    if not only_a or not only_b:
        # Words on one side only: an addition (the `additions` guard's case). None on either side: the same
        # content words, for the threshold to judge; or one replaced by a word found elsewhere in the prompt
        # ("kinetic and potential energy" -> "kinetic and kinetic"), which `swap` refuses there.
        return False
    if any(_opposed(x, y) for x in only_a for y in only_b):
        return False
    covered_a = {x for x in only_a if any(_related(x, y, senses) for y in only_b)}
    covered_b = {y for y in only_b if any(_related(x, y, senses) for x in only_a)}
    for side, own, other, own_cov, other_cov in ((a, only_a, only_b, covered_a, covered_b),
                                                 (b, only_b, only_a, covered_b, covered_a)):
        for inside, definition in _compounds(side, set(own)):
            explained = [y for y in other if forms(y) & definition]
            if explained:
                own_cov.update(inside)
                other_cov.update(explained)
    return covered_a >= set(only_a) and covered_b >= set(only_b)


def clear_caches() -> None:
    """Forget every word looked up (the benchmark times lookups from cold caches)."""
    for cached in (forms, related_words, antonyms, _definition):
        cached.cache_clear()
    WordNet.synset.cache_clear()
