"""The copyright evaluation report (``artlens eval copyright --out DIR``): ``report.json``, ``report.md``
and PNG figures in one folder, the layout of the other evaluation reports (``artlens eval report``).

Figures: the precision-recall curve of every method (``precision_recall.png``) and the recall of every
method per edit family at its operating point (``recall_per_transform.png``). Files are written
atomically; matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artlens.files import pyplot, save_figure, write_json, write_text

SUMMARY_COLUMNS = (("micro_ap", "µAP"), ("recall@p90", "R@P90"), ("recall@p99", "R@P99"),
                   ("top1_on_copies", "top-1"), ("recall", "recall@op"),
                   ("false_positives_on_unedited_distractors", "FP@op unedited"),
                   ("false_positives_on_edited_distractors", "FP@op edited"), ("threshold", "threshold"))


def write_copyright_report(result: dict, out: str | Path) -> dict[str, Path]:
    """Write the report of :func:`~artlens.copyright.evaluate.evaluate_registry` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"precision_recall": plot_precision_recall(result["methods"], out / "precision_recall.png"),
               "recall_per_transform": plot_recall_per_transform(result["methods"], out / "recall_per_transform.png")}
    payload = {**result, "figures": {k: p.name for k, p in figures.items()}}
    paths = {"report.json": out / "report.json", "report.md": out / "report.md"}
    write_json(payload, paths["report.json"])
    write_text(render_markdown(payload), paths["report.md"])
    return {**paths, **figures}


def operating_recall(method: dict) -> dict[str, float]:
    """Recall per edit family at the method's operating point (its 99 % precision threshold if it has none)."""
    return method.get("recall_per_group") or method.get("recall_per_group@p99") or {}


def distractor_queries(result: dict) -> str:
    """How the distractors were queried, e.g. "each unedited (1000) and edited once (1000)"."""
    edited, unedited = result.get("edited_distractors"), result.get("unedited_distractors")
    if edited is None:
        return "each edited once"
    return f"each unedited ({unedited}) and edited once ({edited})" if unedited else "each edited once"


def render_markdown(result: dict) -> str:
    methods = result["methods"]
    lines = ["# Copyright check: edited-copy detection", ""]
    lines.append(f"Registry: `{result.get('registry', '')}`, {result['works']} works; queries: {result['copies']} "
                 f"edited copies ({result['per_work']} per work) and {result['distractors']} distractor images "
                 f"that are not registered, {distractor_queries(result)}; edit seed {result['seed']}.")
    lines += ["", "| method | " + " | ".join(label for _, label in SUMMARY_COLUMNS) + " |",
              "|---" * (len(SUMMARY_COLUMNS) + 1) + "|"]
    for name, m in methods.items():
        lines.append(f"| {name} | " + " | ".join(_cell(m.get(key)) for key, _ in SUMMARY_COLUMNS) + " |")
    lines += ["", "µAP over the top-1 prediction of every query ranked by score; R@P90 / R@P99: highest recall "
              "at 90 % / 99 % precision; top-1: share of copies whose best match is their source; recall@op and "
              "FP@op (false positives on the unedited and on the edited distractors) at the detector's own "
              "operating point (robust: calibrated threshold; cvae-keys: the paper's verdict).", ""]
    for name, m in methods.items():
        if "agreement_with_exact" in m:
            lines.append(f"`{name}`: {m['code_bits']}-bit codes, shortlist of {m['shortlist']} works; verdicts agree "
                         f"with the exact search on {m['agreement_with_exact']:.4f} of the queries.")
    families = sorted({f for m in methods.values() for f in operating_recall(m)})
    if families:
        lines += ["", "## Recall per edit family", "",
                  "At each method's operating point; methods without one at their 99 % precision threshold.", "",
                  "| family | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for family in families:
            lines.append(f"| {family} | " + " | ".join(_cell(operating_recall(m).get(family)) for m in methods.values())
                         + " |")
        lines += ["", "At each method's 99 % precision threshold on these queries (the R@P99 column, per family).", "",
                  "| family | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for family in families:
            lines.append(f"| {family} | " + " | ".join(_cell(m.get("recall_per_group@p99", {}).get(family))
                                                      for m in methods.values()) + " |")
    figures = result.get("figures", {})
    if figures:
        lines += ["", "## Figures", ""] + [f"![{key}]({name})" for key, name in figures.items()]
    return "\n".join(lines) + "\n"


def plot_precision_recall(methods: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, m in methods.items():
        curve = m.get("pr_curve")
        if curve and curve["recall"]:
            ax.plot(curve["recall"], curve["precision"], label=f"{name} (µAP {m['micro_ap']:.3f})")
    ax.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("recall (copies found with their source)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Edited-copy detection: precision against recall")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_recall_per_transform(methods: dict, path: Path) -> Path:
    plt = pyplot()
    families = sorted({f for m in methods.values() for f in operating_recall(m)})
    fig, ax = plt.subplots(figsize=(max(7, 0.8 * len(families) + 2), 4.5))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(families))
    for i, (name, m) in enumerate(methods.items()):
        recall = operating_recall(m)
        ax.bar(x + i * width - 0.4 + width / 2, [recall.get(f, 0.0) for f in families], width, label=name)
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set_ylabel("recall at the operating point")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Recall per edit family")
    fig.tight_layout()
    return save_figure(fig, path)


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "∞" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)
