"""The pair set: (cached prompt, new prompt, should it be served the cached answer?), deterministically.

How each class is made, from the real prompts of `sources.py`:

- `paraphrase` (positives): GLUE MRPC pairs annotators judged paraphrases (human-written, the hard
  part), plus rule-based rewrites of real questions and tasks: a request frame added or dropped
  ("Can you tell me ..."), an indirect question ("Do you know what X is?"), contractions
  toggled, case and final punctuation changed. The rules keep the meaning by construction; they
  are not human paraphrases, and the results are reported by source for that reason.
- `negation`: a yes/no question with its auxiliary negated ("is X ..." -> "isn't X ..."), or "not"
  inserted after the auxiliary of a wh-question ("Which gas is (not) produced ...").
- `antonym`: one word swapped for its opposite. `antonym` uses pairs from the guard's own list
  (`tandem/services/cache/lexicon.py`); `antonym_unseen` uses opposites that list does not have, to
  measure what happens beyond it.
- `entity_number`: a number changed (+1..+9, or doubled) or two numbers swapped, or a name
  replaced by a name from another question.
- `direction`: from/to (or "convert X to Y") arguments swapped, or a direction word flipped
  (ascending/descending, start/stop, upload/download, before/after ...).
- `units`: a unit or currency swapped for another of the same dimension (miles -> kilometers).
- `language`: an English string and its human translation (Django's catalogues, 90+ languages).
- `constraint`: a constraint appended to a real request ("Answer in one sentence.", "Use Rust.").

Each pair carries the id of the source item it came from; `split` puts an item and every pair
made from it on one side (dev or held-out), so thresholds chosen on dev are judged on items
they have never seen.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from bench.semantic_cache import sources
from tandem.services.cache.lexicon import POLARITY

NEGATIVE_CLASSES = ("negation", "antonym", "antonym_unseen", "entity_number", "direction", "units", "language",
                    "constraint")

# Opposites the guard's list does not hold (checked in `build`): the antonym class's unseen half.
UNSEEN_OPPOSITES = [("cause", "effect"), ("rise", "fall"), ("rises", "falls"), ("friend", "enemy"),
                    ("victory", "defeat"), ("dark", "bright"), ("loud", "quiet"), ("clean", "dirty"),
                    ("sweet", "sour"), ("rough", "smooth"), ("sharp", "dull"), ("northern", "southern"),
                    ("eastern", "western"), ("inhale", "exhale"), ("expand", "contract"), ("attract", "repel"),
                    ("vertical", "horizontal"), ("urban", "rural"), ("domestic", "foreign"), ("sink", "float"),
                    ("dominant", "recessive"), ("natural", "artificial"), ("visible", "invisible"),
                    ("permanent", "temporary"), ("major", "minor"), ("senior", "junior"), ("solid", "liquid"),
                    ("acidic", "basic"), ("predator", "prey"), ("producer", "consumer"), ("absorb", "reflect"),
                    ("conductor", "insulator"), ("mammal", "reptile"), ("herbivore", "carnivore"),
                    ("prokaryotic", "eukaryotic"), ("asexual", "sexual"), ("kinetic", "potential"),
                    ("ancestor", "descendant"), 
                    ("famous", "unknown"), ("native", "invasive"), ("wild", "tame"), ("sunny", "cloudy"),
                    ("ally", "rival"), ("teacher", "student"), ("buyer", "seller"),
                    ("employer", "employee"), ("landlord", "tenant"), ("debit", "credit"), ("creditor", "debtor"),
                    ("supply", "demand"), ("asset", "liability"), ("assets", "liabilities"), ("income", "expense"),
                    ("revenue", "cost"), ("inflation", "deflation"), ("surplus", "deficit"), ("prime", "composite"), ("numerator", "denominator"),
                    ("row", "column"), ("rows", "columns"), ("vowels", "consonants"), ("vowel", "consonant"),
                    ("prefix", "suffix"), ("key", "value"), ("keys", "values"),
                    ("head", "tail"), ("parent", "child"), ("server", "client"), ("mean", "median")]

DIRECTION_AXES = [("ascending", "descending"), ("increasing", "decreasing"), ("increase", "decrease"),
                  ("start", "stop"), ("begin", "end"), ("first", "last"), ("before", "after"), ("upload", "download"),
                  ("encode", "decode"), ("encrypt", "decrypt"), ("import", "export"), ("push", "pull"),
                  ("send", "receive"), ("buy", "sell"), ("left", "right"), ("north", "south"), ("east", "west"),
                  ("up", "down"), ("above", "below"), ("input", "output"), ("maximum", "minimum"),
                  ("largest", "smallest"), ("lend", "borrow"), ("enter", "exit"), ("open", "close"),
                  ("upper", "lower"), ("uppercase", "lowercase"), ("min", "max")]

UNIT_SWAPS = [("miles", "kilometers"), ("mile", "kilometer"), ("feet", "meters"), ("foot", "meter"),
              ("inches", "centimeters"), ("inch", "centimeter"), ("pounds", "kilograms"), ("pound", "kilogram"),
              ("ounces", "grams"), ("gallons", "liters"), ("gallon", "liter"), ("hours", "minutes"),
              ("hour", "minute"), ("minutes", "seconds"), ("minute", "second"), ("days", "weeks"), ("day", "week"),
              ("weeks", "months"), ("week", "month"), ("months", "years"), ("month", "year"), ("years", "decades"),
              ("dollars", "euros"), ("dollar", "euro"), ("cents", "pennies"), ("Fahrenheit", "Celsius"),
              ("Celsius", "Fahrenheit"), ("USD", "EUR"), ("EUR", "GBP"), ("yards", "meters"), ("cups", "liters"),
              ("kilometers", "miles"), ("meters", "feet"), ("grams", "ounces"), ("liters", "gallons"),
              ("acres", "hectares"), ("degrees", "radians"), ("radians", "degrees"), ("bytes", "bits"),
              ("megabytes", "gigabytes"), ("percent", "dollars")]

CONSTRAINTS = ["Answer in one sentence.", "Explain step by step.", "Use at most 20 words.", "Answer in French.",
               "Give only the final answer.", "Respond in JSON.", "Cite your sources.",
               "Explain it to a five-year-old.", "Make it rhyme.", "Use a bulleted list.", "Write it in Rust.",
               "Write it in JavaScript.", "Do not use recursion.", "Include a code example.", "Keep it under 50 words.",
               "Answer as a table.", "Write it as a haiku.", "Add unit tests.", "Use formal language.",
               "Focus on the history."]

FRAMES = ["Can you tell me {q}", "Could you tell me {q}", "Please tell me {q}", "I'd like to know {q}",
          "Quick question: {q}", "Hey, {q}", "I was wondering, {q}", "Question: {q}", "{q} Thanks!",
          "{q} Thank you.", "Do you know {q}"]
AUX = ["is", "are", "was", "were", "does", "do", "did", "can", "could", "has", "have", "will", "should", "would"]
NEGATED_AUX = {"is": "isn't", "are": "aren't", "was": "wasn't", "were": "weren't", "does": "doesn't",
               "do": "don't", "did": "didn't", "can": "can't", "could": "couldn't", "has": "hasn't",
               "have": "haven't", "will": "won't", "should": "shouldn't", "would": "wouldn't"}
CONTRACT = [("What is ", "What's "), ("what is ", "what's "), ("Who is ", "Who's "), ("who is ", "who's "),
            ("Where is ", "Where's "), ("where is ", "where's "), ("It is ", "It's "), ("does not ", "doesn't "),
            ("do not ", "don't "), ("is not ", "isn't ")]
WH_INDIRECT = re.compile(r"^(what|who|where|which|when)\s+(is|are|was|were)\s+(.+?)\s*\??$", re.IGNORECASE)
# Reworded questions: (pattern, replacement); each keeps what is asked and how it is answered.
REWORDINGS = [(re.compile(p, re.IGNORECASE), r) for p, r in [
    (r"^what (is|was) the (\w+) of ((?-i:[A-Z][\w']*(?: [A-Z][\w']*){0,2}))\s*\?$", r"What \1 \3's \2?"),
    (r"^what (is|was) the boiling point of (.+?)\s*\??$", r"At what temperature does \2 boil?"),
    (r"^who wrote (.+?)\s*\??$", r"Who is the author of \1?"),
    (r"^who (invented|discovered|founded|directed|painted|composed|designed|created) (.+?)\s*\??$",
     r"\2 was \1 by whom?"),
    (r"^when was (.+?) born\s*\??$", r"What is the date of birth of \1?"),
    (r"^when did (.+?) die\s*\??$", r"When did \1 pass away?"),
    (r"^where is (.+?) located\s*\??$", r"What is the location of \1?"),
    (r"^what does (.+?) stand for\s*\??$", r"What is \1 short for?"),
    (r"^what is the meaning of (.+?)\s*\??$", r"What does \1 mean?"),
    (r"^who sings (.+?)\s*\??$", r"Who is the singer of \1?"),
    (r"^who sang (.+?)\s*\??$", r"Who was the singer of \1?"),
    (r"^who plays (.+?) in (.+?)\s*\??$", r"Who is the actor that plays \1 in \2?"),
    (r"^who played (.+?) in (.+?)\s*\??$", r"Which actor played \1 in \2?"),
    (r"^what is the capital (?:city )?of (.+?)\s*\??$", r"Which city is the capital of \1?"),
    (r"^how many (.+?) are there in (.+?)\s*\??$", r"What is the number of \1 in \2?"),
    (r"^write a (python )?function to (.+)$", r"Implement a \1function that does the following: \2"),
    (r"^which (\w+) (is|was) (.+?)\s*\??$", r"What \1 \2 \3?"),
    (r"^what (\w+) (is|was) (.+?)\s*\??$", r"Which \1 \2 \3?"),
]]
NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
NAME = re.compile(r"(?<=\s)([A-Z][a-z]{2,})\b")
FROM_TO = re.compile(r"\bfrom (\w+(?: \w+)?) to (\w+(?: \w+)?)")
CONVERT = re.compile(r"\b(convert (?:an? |the )?)(\w+(?: \w+)?)( (?:to|into) (?:an? |the )?)(\w+(?: \w+)?)")


@dataclass(frozen=True)
class Pair:
    cached: str
    query: str
    kind: str  # "paraphrase" or a negative class
    source: str  # dataset (and rule) the pair came from
    item: str  # id of the source item: the unit of the dev/held-out split

    @property
    def positive(self) -> bool:
        return self.kind == "paraphrase"

    @property
    def split(self) -> str:
        return "dev" if hashlib.sha256(self.item.encode()).digest()[0] % 2 == 0 else "heldout"

    def to_json(self) -> dict:
        return {**asdict(self), "split": self.split}


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first.istitle() and first.lower() in {*AUX, "what", "who", "where",
                                                                              "which", "when", "why", "how",
                                                                              "in", "the", "a", "write"} else text


def _word_swap(text: str, old: str, new: str) -> str | None:
    pattern = re.compile(rf"\b{re.escape(old)}\b")
    if not pattern.search(text):
        return None
    return pattern.sub(new, text, count=1)


def paraphrases(rng: random.Random) -> Iterator[Pair]:
    for i, (a, b, same) in enumerate(sources.mrpc()):
        if same:
            yield Pair(a, b, "paraphrase", "mrpc", f"mrpc:{i}")
    pool = sources.questions()
    rows = [(f"{name}:{i}", q) for name in ("nq", "trivia", "sciq") for i, q in enumerate(pool[name])]
    rows += [(f"mbpp:{i}", t) for i, t in enumerate(sources.mbpp_tasks())]
    for item, text in rng.sample(rows, 1200):
        text = text.strip()
        rule = rng.choice(["frame", "indirect", "contraction", "surface"])
        out = next((pattern.sub(replacement, text) for pattern, replacement in REWORDINGS if pattern.match(text)),
                   None)
        if out is not None:
            rule = "reworded"
        elif rule == "indirect" and (m := WH_INDIRECT.match(text)):
            out = f"Do you know {m.group(1).lower()} {m.group(3)} {m.group(2)}?"
        elif rule == "contraction":
            for long, short in CONTRACT:
                if long in text or short in text:
                    out = text.replace(long, short) if long in text else text.replace(short, long)
                    break
        elif rule == "surface":
            out = text.lower().rstrip("?.") if text != text.lower() else text.capitalize() + "?"
        if out is None:
            rule = "frame"
            out = rng.choice(FRAMES).format(q=_lower_first(text))
        yield Pair(text, out, "paraphrase", f"{item.split(':')[0]}/{rule}", item)


def negations(rng: random.Random) -> Iterator[Pair]:
    for i, q in enumerate(sources.yes_no_questions()):
        first, _, rest = q.partition(" ")
        if first in NEGATED_AUX and rest:
            yield Pair(q, f"{NEGATED_AUX[first]} {rest}", "negation", "boolq/aux", f"boolq:{i}")
    pool = sources.questions()
    for name in ("trivia", "sciq", "arc"):
        for i, q in enumerate(pool[name]):
            m = re.match(r"^((?:What|Which|Who|Where|When|How)\b[^?]*?\s)(is|are|was|were|can|does|do|did|will)\s"
                         r"(?!not\b)", q)
            if m and " not " not in q:
                negated = q[:m.end(2)] + " not" + q[m.end(2):]
                yield Pair(q, negated, "negation", f"{name}/wh-not", f"{name}:{i}")


def antonyms(rng: random.Random, unseen: bool) -> Iterator[Pair]:
    if unseen:
        swaps = [(a, b) for a, b in UNSEEN_OPPOSITES] + [(b, a) for a, b in UNSEEN_OPPOSITES]
    else:
        by_axis: dict[str, list[tuple[str, int]]] = {}
        for word, value in POLARITY.items():
            axis, pole = value.split(":")
            by_axis.setdefault(axis, []).append((word, int(pole)))
        swaps = [(w, o) for words in by_axis.values() for w, p in words for o, q in words if p != q]
    kind = "antonym_unseen" if unseen else "antonym"
    pool = sources.questions()
    rows = [(f"{name}:{i}", q) for name in ("trivia", "sciq", "arc", "nq") for i, q in enumerate(pool[name])]
    rows += [(f"mbpp:{i}", t) for i, t in enumerate(sources.mbpp_tasks())]
    for item, text in rows:
        lowered = f" {text.lower()} "
        options = [(a, b) for a, b in swaps if f" {a} " in lowered]
        if options:
            a, b = rng.choice(options)
            swapped = _word_swap(text, a, b)
            if swapped and swapped != text:
                yield Pair(text, swapped, kind, item.split(":")[0], item)


def entities_and_numbers(rng: random.Random) -> Iterator[Pair]:
    for i, problem in enumerate(sources.gsm8k_problems()):
        numbers = NUMBER.findall(problem)
        distinct = list(dict.fromkeys(numbers))
        if len(distinct) >= 2 and rng.random() < 0.5:
            a, b = distinct[:2]
            swapped = NUMBER.sub(lambda m, a=a, b=b: b if m.group() == a else a if m.group() == b else m.group(),
                                 problem)
            yield Pair(problem, swapped, "entity_number", "gsm8k/swap-numbers", f"gsm8k:{i}")
        elif numbers:
            old = rng.choice(numbers)
            new = str(int(float(old)) * 2) if rng.random() < 0.3 else str(int(float(old)) + rng.randint(1, 9))
            yield Pair(problem, re.sub(rf"\b{re.escape(old)}\b", new, problem, count=1), "entity_number",
                       "gsm8k/change-number", f"gsm8k:{i}")
    trivia = sources.questions()["trivia"]
    names = sorted({n for q in trivia for n in NAME.findall(q)})
    for i, q in enumerate(trivia):
        found = NAME.findall(q)
        if found:
            old = rng.choice(found)
            new = rng.choice(names)
            if new != old:
                yield Pair(q, _word_swap(q, old, new), "entity_number", "trivia/change-name", f"trivia:{i}")


def directions(rng: random.Random) -> Iterator[Pair]:
    flips = DIRECTION_AXES + [(b, a) for a, b in DIRECTION_AXES]
    pool = sources.questions()
    rows = [(f"mbpp:{i}", t) for i, t in enumerate(sources.mbpp_tasks())]
    rows += [(f"{name}:{i}", q) for name in ("nq", "trivia", "sciq") for i, q in enumerate(pool[name])]
    for item, text in rows:
        source = item.split(":")[0]
        if (m := CONVERT.search(text)) and m.group(2) != m.group(4):
            swapped = text[:m.start()] + m.group(1) + m.group(4) + m.group(3) + m.group(2) + text[m.end():]
            yield Pair(text, swapped, "direction", f"{source}/convert-swap", item)
        elif (m := FROM_TO.search(text)) and m.group(1) != m.group(2):
            swapped = text[:m.start()] + f"from {m.group(2)} to {m.group(1)}" + text[m.end():]
            yield Pair(text, swapped, "direction", f"{source}/from-to-swap", item)
        else:
            lowered = f" {text.lower()} "
            options = [(a, b) for a, b in flips if f" {a} " in lowered]
            if options:
                a, b = rng.choice(options)
                swapped = _word_swap(text, a, b)
                if swapped and swapped != text:
                    yield Pair(text, swapped, "direction", f"{source}/flip-word", item)


def units(rng: random.Random) -> Iterator[Pair]:
    pool = sources.questions()
    rows = [(f"gsm8k:{i}", p) for i, p in enumerate(sources.gsm8k_problems())]
    rows += [(f"{name}:{i}", q) for name in ("trivia", "sciq", "nq", "arc") for i, q in enumerate(pool[name])]
    for item, text in rows:
        options = [(a, b) for a, b in UNIT_SWAPS if re.search(rf"\b{re.escape(a)}\b", text)]
        if options:
            a, b = rng.choice(options)
            yield Pair(text, _word_swap(text, a, b), "units", item.split(":")[0], item)


def languages(rng: random.Random) -> Iterator[Pair]:
    for language, english, translated in sources.translations():
        item = f"django:{english}"
        if rng.random() < 0.5:
            yield Pair(english, translated, "language", f"django/{language}", item)
        else:
            yield Pair(translated, english, "language", f"django/{language}", item)


def constraints(rng: random.Random) -> Iterator[Pair]:
    pool = sources.questions()
    rows = [(f"{name}:{i}", q) for name in ("trivia", "sciq", "nq") for i, q in enumerate(pool[name])]
    rows += [(f"mbpp:{i}", t) for i, t in enumerate(sources.mbpp_tasks())]
    for item, text in rng.sample(rows, 1500):
        text = text.strip()
        constrained = f"{text} {rng.choice(CONSTRAINTS)}"
        cached, query = (text, constrained) if rng.random() < 0.5 else (constrained, text)
        yield Pair(cached, query, "constraint", item.split(":")[0], item)


def build(seed: int = 23, per_class: int = 1000) -> list[Pair]:
    """Up to `per_class` pairs of each class (the positives included), sampled with `seed`."""
    leaked = [p for p in UNSEEN_OPPOSITES if p[0] in POLARITY and p[1] in POLARITY]
    if leaked:
        raise ValueError(f"UNSEEN_OPPOSITES must not be in the guard's list: {leaked}")
    makers = {"paraphrase": paraphrases, "negation": negations, "antonym": lambda r: antonyms(r, unseen=False),
              "antonym_unseen": lambda r: antonyms(r, unseen=True), "entity_number": entities_and_numbers,
              "direction": directions, "units": units, "language": languages, "constraint": constraints}
    pairs: list[Pair] = []
    for kind, make in makers.items():
        rng = random.Random(f"{seed}:{kind}")
        made = list(dict.fromkeys(p for p in make(rng) if p.cached != p.query))
        pairs += rng.sample(made, min(per_class, len(made)))
    return pairs
