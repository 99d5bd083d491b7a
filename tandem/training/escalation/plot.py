"""The calibration figure: quality recovered (PGR) against the share of requests escalated."""

from __future__ import annotations

from pathlib import Path

from tandem.training.escalation.curves import Curve


def plot_curves(curves: dict[str, Curve], path: Path, strong_source: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, curve in curves.items():
        ax.plot(curve.call_fraction, curve.pgr, label=f"{name} (APGR {curve.apgr:.3f}, n={len(curve.pgr) - 1})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random (APGR 0.5)")
    for level in (0.5, 0.8, 0.95):
        ax.axhline(level, color="lightgrey", linewidth=0.6)
    ax.set_xlabel("share of requests escalated")
    ax.set_ylabel("performance gap recovered (PGR)")
    ax.set_title(f"Escalating the hardest k%  (strong: {strong_source.split(' (')[0]})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
