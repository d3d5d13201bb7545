"""``artlens eval privacy --out DIR``: a membership-inference audit as ``report.md``, ``report.json``
and ``roc.png`` (the attacks' ROC curves on log axes, where the low false-positive rates that
matter are visible), the layout every report uses; ``privacy_table`` is the table of several
audits side by side (``benchmarks/privacy.py`` and the privacy section of docs/RESULTS.md)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from artlens.files import pyplot, save_figure, write_json, write_text
from artlens.reports.markdown import fmt, table

TPR_KEYS = ("tpr@1%fpr", "tpr@0.1%fpr")


def privacy_label(record: dict | None) -> str:
    """A short name of the privacy setting of an audit (``no DP``, ``record-level DP, eps 8``, ...)."""
    if not record:
        return "no DP"
    eps = record.get("epsilon")
    target = record.get("target_epsilon")
    shown = f"{target:g}" if target else (f"{eps:g}" if eps is not None else "?")
    return f"{record.get('level', 'DP').split(' ')[0]}-level DP, eps {shown}"


def audit_rows(audit: dict) -> list[list]:
    rows = []
    for name, roc in audit["attacks"].items():
        rows.append([name, roc["auc"], *(roc.get(k) for k in TPR_KEYS), roc["n_members"], roc["n_nonmembers"]])
    return rows


def write_privacy_report(audit: dict, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"report": "privacy", "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **audit}
    what = ("artist profiles" if audit["kind"] == "profiles" else f"{audit.get('trained', '')} head").strip()
    privacy = audit.get("privacy") or {}
    utility = audit["utility"]
    md = [f"# Privacy audit: {what} {audit['head']}", "",
          f"Membership inference on {audit.get('collection', 'the collection')}: {audit['members']} members "
          f"(trained on) against {audit['nonmembers']} non-members; {audit['shadows']} shadow models for LiRA "
          "(`artlens eval privacy`). AUC 0.5 and TPR = FPR are chance.", "",
          f"**Setting**: {privacy_label(privacy or None)}"
          + (f" (spent epsilon {privacy['epsilon']:.3g}, delta {privacy.get('delta', 0):g})"
             if privacy.get("epsilon") is not None else "") + ".", "",
          f"**Protects**: {audit.get('protects', '')}.", "",
          table(["attack", "ROC AUC", "TPR @ 1 % FPR", "TPR @ 0.1 % FPR", "members", "non-members"], audit_rows(audit)),
          "", "**Utility** (held-out): " + ", ".join(f"{k} {fmt(v)}" for k, v in utility.items() if v is not None), ""]
    md += [f"- {note}" for note in audit.get("notes", [])]
    md += ["", "![ROC curves](roc.png)", ""]
    return {"json": write_json(payload, out / "report.json"), "md": write_text("\n".join(md), out / "report.md"),
            "png": plot_roc(audit["attacks"], out / "roc.png", what)}


def plot_roc(attacks: dict, path: Path, title: str = "") -> Path:
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4.2))
    for name, roc in attacks.items():
        if not roc.get("fpr"):
            continue
        label = f"{name} (AUC {roc['auc']:.3f})"
        axes[0].plot(roc["fpr"], roc["tpr"], label=label)
        axes[1].plot(roc["fpr"], roc["tpr"], label=label)
    for ax, scale in zip(axes, ("linear", "log")):
        ax.plot([1e-4, 1], [1e-4, 1], color="grey", linestyle="--", label="chance")
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        if scale == "log":
            ax.set_xlim(1e-3, 1)
            ax.set_ylim(1e-3, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"membership inference: {title}")
    fig.tight_layout()
    return save_figure(fig, path)


def privacy_table(rows: Sequence[dict]) -> str:
    """Setting, utility and the strongest attack's AUC / TPR of several audits (one row each:
    ``setting``, ``map``, ``top1``, ``auc_threshold``, ``auc_lira``, ``tpr@1%fpr``, ``tpr@0.1%fpr``,
    ``epsilon``)."""
    body = [[r["setting"], r.get("map"), r.get("top1"), r.get("auc_threshold"), r.get("auc_lira"),
             r.get("tpr@1%fpr"), r.get("tpr@0.1%fpr"), r.get("epsilon")] for r in rows]
    return table(["setting", "held-out mAP", "top-1", "AUC threshold", "AUC LiRA", "TPR @ 1 % FPR (LiRA)",
                  "TPR @ 0.1 % FPR (LiRA)", "epsilon spent"], body)


def summary_row(setting: str, audit: dict) -> dict:
    """One row of ``privacy_table`` from an audit."""
    attacks = audit["attacks"]
    strongest = attacks.get("lira") or attacks["threshold"]
    return {"setting": setting, "map": audit["utility"].get("map"), "top1": audit["utility"].get("top1"),
            "auc_threshold": attacks["threshold"]["auc"], "auc_lira": (attacks.get("lira") or {}).get("auc"),
            **{k: strongest.get(k) for k in TPR_KEYS}, "epsilon": (audit.get("privacy") or {}).get("epsilon")}
