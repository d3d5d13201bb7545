"""What ``artlens study analyse`` writes: ``analysis.json``, ``analysis.md`` and ``cumulative.png``."""

from __future__ import annotations

from pathlib import Path

from artlens.evaluation.report_markdown import table
from artlens.files import pyplot, save_figure, write_json, write_text
from artlens.study.analysis import cumulative_agreement


def write_analysis(analysis: dict, weights: dict, out: Path) -> dict[str, Path]:
    paths = {"json": write_json({**analysis, "learned_weights": weights}, out / "analysis.json"),
             "md": write_text(render(analysis, weights), out / "analysis.md")}
    if analysis["questions"]:
        paths["png"] = plot_cumulative(analysis, out / "cumulative.png")
    return paths


def plot_cumulative(analysis: dict, path: Path) -> Path:
    plt = pyplot()
    curves = cumulative_agreement(analysis)
    n = len(analysis["questions"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = list(range(1, n + 1))
    ax.plot(x, x, color="grey", linestyle=":", label="always agrees")
    for m, ys in curves.items():
        ax.plot(x, ys, marker="o", markersize=3, label=analysis["methods"][m])
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("questions, easiest (highest human consensus) first")
    ax.set_ylabel("cumulative agreements with the majority")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def render(analysis: dict, weights: dict) -> str:
    names = analysis["methods"]
    overall = analysis["overall"]
    lines = ["# Human vs machine similarity", "",
             f"{analysis['answered_questions']} of {analysis['questions_in_study']} questions answered, "
             f"{analysis['answers']} answers from {analysis['participants']} participant(s)"
             + (f" ({analysis['simulated_participants']} simulated by `artlens study simulate`)"
                if analysis.get("simulated_participants") else "")
             + ". Mean consensus (share "
             f"choosing the majority pair, the best Ps any method can reach): {fmt(overall['consensus'])}.", "",
             "## Overall", "",
             table(["method", "Ps", "Agree", "questions"],
                   [[names[m], s["ps"], s["agree"], s["questions"]]
                    for m, s in sorted(overall["methods"].items(), key=lambda kv: -kv[1]["agree"])]), "",
             "## Per group", ""]
    methods = list(names)
    lines.append(table(["group", "questions", "consensus"] + [f"Agree {names[m]}" for m in methods],
                       [[g, s["questions"], s["consensus"]] + [s["methods"].get(m, {}).get("agree") for m in methods]
                        for g, s in analysis["groups"].items()]))
    lines += ["", "## Questions by difficulty (easiest first)", "",
              table(["rank", "question", "group", "answers", "consensus", "majority pair(s)"]
                    + [f"{names[m]} agrees" for m in methods],
                    [[r["rank_easiest_first"], r["question"], r["group"], r["answers"], r["consensus"],
                      " / ".join(f"{a}-{b}" for a, b in r["majority"])]
                     + [r["methods"].get(m, {}).get("agree") for m in methods] for r in analysis["questions"]]),
              "", "![cumulative agreements](cumulative.png)", "", "## Weights learned from the judgements", ""]
    if "skipped" in weights:
        lines.append(f"Skipped: {weights['skipped']}.")
    else:
        lines.append(f"Fitted on {weights['train_questions']} questions, tested on {weights['heldout_questions']} "
                     f"held-out questions (seed {weights['seed']}).")
        lines += ["", table(["weights", "values", "Agree (train)", "Agree (held out)", "Ps (held out)"],
                            [[name, ", ".join(f"{a} {w:.2f}" for a, w in weights[key]["weights"].items()),
                              weights[key]["train"]["agree"], weights[key]["heldout"]["agree"],
                              weights[key]["heldout"]["ps"]]
                             for key, name in (("before", "collection's"), ("after", "fitted"))])]
    return "\n".join(lines) + "\n"


def fmt(v) -> str:
    """A score to three decimals; "n/a" where there is none (e.g. no question has an answer)."""
    return "n/a" if v is None else f"{v:.3f}"
