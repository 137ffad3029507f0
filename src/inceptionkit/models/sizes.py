"""Which input sizes a network takes, as data: checked before a forward pass, shown in configs and docs.

A rule is worked out from the network's strides and paddings (tests check it against real forward
passes): a smallest side, and for BN-Inception, whose stride-2 convs and pools agree only on even
grids, the sides that leave even grids where it reduces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..probe import LayerInputError, dims


@dataclass(frozen=True)
class SizeRule:
    """Input sides (height and width, each) a trunk takes: at least ``minimum``; with ``period``, only
    sides within ``below`` under to ``above`` over a multiple of ``period``. ``exact``: a head that
    takes one (H, W) only (a flatten head)."""

    minimum: int = 1
    period: int = 0
    below: int = 0
    above: int = 0
    exact: tuple[int, int] | None = None

    def accepts(self, side: int) -> bool:
        """True when a side of ``side`` pixels works (for the trunk; see ``exact`` for the head)."""
        if side < self.minimum:
            return False
        if not self.period:
            return True
        offset = side % self.period
        return offset <= self.above or offset >= self.period - self.below

    def nearest(self, side: int) -> list[int]:
        """The closest working sides below and above ``side`` (one or two numbers)."""
        below = next((s for s in range(side - 1, 0, -1) if self.accepts(s)), None)
        above = next(s for s in range(max(side + 1, self.minimum), side + 2 * self.period + self.minimum + 2)
                     if self.accepts(s))
        return [s for s in (below, above) if s is not None]

    def brief(self) -> str:
        """The rule in a few characters, for tables: '>=75', '=32x32', '32k-1..32k+6'."""
        if self.exact:
            return f"={dims(self.exact)}"
        if self.period:
            return f"{self.period}k-{self.below}..{self.period}k+{self.above}"
        return f">={self.minimum}" if self.minimum > 1 else "any"

    def describe(self) -> str:
        """The rule in words: 'at least 75x75', 'sides 32k-1 ... 32k+6 (k >= 1) ...'."""
        if self.exact:
            return f"exactly {dims(self.exact)}"
        if not self.period:
            return f"at least {self.minimum}x{self.minimum}" if self.minimum > 1 else "any size"
        p, lo, hi = self.period, self.below, self.above
        examples = ", ".join(f"{k * p - lo}-{k * p + hi}" for k in (1, 2, 7))
        return (f"sides from {lo} under to {hi} over a multiple of {p} ({examples}, ...; every multiple of {p} "
                f"from {p})")


def check_input(x: torch.Tensor, network: str, first: str, last: str, in_chans: int, rule: SizeRule) -> None:
    """Refuse an input of the wrong channels or size before any layer runs, naming what the network takes."""
    shape = dims(x.shape)
    if in_chans and (x.dim() != 4 or x.shape[1] != in_chans):
        raise LayerInputError(f"{network}: stage {first!r} cannot take its input of shape {shape} "
                              f"(batch first): it takes {in_chans} channels")
    sides = [int(s) for s in x.shape[2:]]
    bad = [s for s in sides if not rule.accepts(s)]
    if bad:
        fault = "is too small for" if bad[0] < rule.minimum else "does not fit"
        near = " and ".join(map(str, rule.nearest(bad[0])))
        raise LayerInputError(f"{network}: an input of shape {shape} (batch first) {fault} its stages "
                              f"({first} ... {last}): they take {rule.describe()} (nearest sides that work: {near})")
