"""A spending cap in dollars and tokens that concurrent requests cannot overshoot.

Each request reserves its worst case (estimated prompt tokens + max_tokens) before it is sent and
settles to its real usage when it returns; a request whose reservation would cross a cap is not
sent. Cached replies cost nothing now, but what they cost when they were paid for counts against
the caps (`earlier_*`, read from the response cache): a resumed or repeated run over the same cache
has only what is left of the budget, not a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem.common.prices import Price


class BudgetExhausted(Exception):
    """The next request could cross the dollar or token cap."""


@dataclass
class Budget:
    price: Price | None
    max_usd: float | None
    max_tokens: int | None
    spent_tokens: int = 0  # by this run
    spent_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    earlier_tokens: int = 0  # paid by earlier runs into the same cache
    earlier_usd: float = 0.0

    @classmethod
    def resumed(cls, price: Price | None, max_usd: float | None, max_tokens: int | None,
                earlier_prompt_tokens: int, earlier_completion_tokens: int) -> Budget:
        budget = cls(price, max_usd, max_tokens)
        budget.earlier_tokens = earlier_prompt_tokens + earlier_completion_tokens
        budget.earlier_usd = budget._usd(earlier_prompt_tokens, earlier_completion_tokens)
        return budget

    @property
    def total_tokens(self) -> int:
        return self.earlier_tokens + self.spent_tokens

    @property
    def total_usd(self) -> float:
        return self.earlier_usd + self.spent_usd

    def _usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.price.cost(prompt_tokens, completion_tokens) if self.price else 0.0

    def reserve(self, prompt_tokens: int, max_completion: int) -> tuple[int, float]:
        tokens, usd = prompt_tokens + max_completion, self._usd(prompt_tokens, max_completion)
        if (
            self.max_tokens is not None
            and self.total_tokens + self.reserved_tokens + tokens > self.max_tokens
        ):
            raise BudgetExhausted(f"token cap {self.max_tokens:,} reached ({self.total_tokens:,} spent)")
        if self.max_usd is not None and self.total_usd + self.reserved_usd + usd > self.max_usd:
            raise BudgetExhausted(f"dollar cap ${self.max_usd:.2f} reached (${self.total_usd:.4f} spent)")
        self.reserved_tokens += tokens
        self.reserved_usd += usd
        return tokens, usd

    def settle(self, reservation: tuple[int, float], prompt_tokens: int, completion_tokens: int) -> None:
        self.reserved_tokens -= reservation[0]
        self.reserved_usd -= reservation[1]
        self.spent_tokens += prompt_tokens + completion_tokens
        self.spent_usd += self._usd(prompt_tokens, completion_tokens)
