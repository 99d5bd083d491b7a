"""Quality gates (`configs/pipeline/gates.yaml`): thresholds on the figures the validation measures.

A gate names one figure (dotted, e.g. `task.gsm8k`, `routing.accuracy`, `latency.p95_s`,
`size.base_mb`, `escalation.answer_confidence_auroc`) and a bound. Thresholds are fixed in the
file before any run; a figure that was not measured fails its gate (nothing passes by absence).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel


class Gate(RecipeModel):
    figure: str = Field(pattern=r"^[A-Za-z0-9_.%-]+$")
    min: float | None = None
    max: float | None = None
    why: str = Field("", description="What the bound protects, for the report.")

    @model_validator(mode="after")
    def _bounded(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.figure} needs min or max")
        return self

    def bound(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + \
                ([f"<= {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


class GatesConfig(RecipeModel):
    gates: list[Gate] = Field(min_length=1)


def check_gates(gates: GatesConfig, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per gate: figure, value, bound, passed, why."""
    verdicts = []
    for gate in gates.gates:
        value = figures.get(gate.figure)
        measured = isinstance(value, int | float) and not isinstance(value, bool)
        passed = measured and (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        verdicts.append({"figure": gate.figure, "value": value if measured else None, "bound": gate.bound(),
                         "passed": bool(passed), "why": gate.why, "note": "" if measured else "not measured"})
    return verdicts
