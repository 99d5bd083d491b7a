"""Project-written training prompts, expanded from tandem/training/routing/data/templates.yaml.

Every example of one template shares the template's id, so a template's variants all land in the
same split: test accuracy on templated data is measured on templates the head never saw.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from tandem.training.routing.examples import RoutingExample

DEFAULT_TEMPLATES = Path(__file__).parent / "data" / "templates.yaml"
_SLOT = re.compile(r"\{(\w+)\}")


def load_templates(path: str | Path = DEFAULT_TEMPLATES) -> dict:
    data = yaml.safe_load(Path(path).read_text())
    for domain, spec in data["domains"].items():
        for template in spec["templates"]:
            missing = set(_SLOT.findall(template)) - set(spec.get("slots", {}))
            if missing:
                raise ValueError(f"template for '{domain}' uses unknown slots {sorted(missing)}: {template!r}")
    return data


def _fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    return _SLOT.sub(lambda m: str(rng.choice(slots[m.group(1)])), template)


def _vary(text: str, rng: random.Random, openers: list[str], closers: list[str]) -> str:
    text = rng.choice(openers) + text + rng.choice(closers)
    if rng.random() < 0.3:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.2:
        text = text.rstrip("?")
    return text.strip()


def generate(domains: list[str], per_template: int, seed: int = 0,
             path: str | Path = DEFAULT_TEMPLATES) -> Iterator[RoutingExample]:
    """Up to `per_template` distinct variants of every template of the listed domains."""
    data = load_templates(path)
    rng = random.Random(seed)
    for domain in domains:
        spec = data["domains"].get(domain)
        if spec is None:
            continue
        for index, template in enumerate(spec["templates"]):
            seen: set[str] = set()
            for _ in range(per_template * 3):
                text = _vary(_fill(template, spec.get("slots", {}), rng), rng, data["openers"], data["closers"])
                if text not in seen:
                    seen.add(text)
                    yield RoutingExample(dataset=f"template_{domain}", item_id=f"t{index}", text=text,
                                         domain=domain, origin="template")
                if len(seen) >= per_template:
                    break
