"""The run's metrics log (JSONL, one object per line) and a PNG of its training curves.

Example:
    >>> log = MetricsLog("runs/exp/metrics.jsonl")
    >>> log.append({"iter": 10, "loss": 1.2})
    >>> plot_curves(log.read(), "runs/exp/curves.png")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maskrt.atomic import atomic_path, write_text


class MetricsLog:
    """Append-only JSONL of training losses and evaluation results, truncatable on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every complete row (a half-written last line from a killed run is skipped)."""
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate(self, iteration: int) -> None:
        """Drop rows logged after ``iteration`` (work a killed run did past its last checkpoint)."""
        rows = [r for r in self.read() if int(r.get("iter", 0)) <= iteration]
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))


def plot_curves(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Write losses, learning rate and validation AP against iteration to a PNG; None if nothing to plot."""
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval" in r]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    keys = [k for k in train[0] if k.startswith("loss")] if train else []
    for k in keys:
        axes[0].plot([r["iter"] for r in train], [r[k] for r in train], label=k, lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("training losses")
    axes[0].set_xlabel("iteration")
    if keys:
        axes[0].legend(fontsize=7)
    axes[1].plot([r["iter"] for r in train], [r.get("lr", 0) for r in train])
    axes[1].set_title("learning rate")
    axes[1].set_xlabel("iteration")
    for t, label in (("segm", "mask"), ("bbox", "box")):
        for stat in ("AP", "AP50"):
            axes[2].plot(
                [r["iter"] for r in evals],
                [r["eval"][t][stat] for r in evals],
                marker="o",
                label=f"{label} {stat}",
            )
    axes[2].set_title("validation")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylim(0, 1)
    if evals:
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
