"""`artlens eval privacy`: membership-inference audit of a head (central or federated) or of artist
profiles published in its space."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from artlens.cli import (
    collection_option,
    eval_app,
    json_option,
    make_console,
    open_collection,
    print_json,
    quiet_option,
)
from artlens.privacy.config import AuditConfig

A = AuditConfig()


@eval_app.command("privacy")
def eval_privacy(
    head: Path = typer.Option(..., "--head", help="Head file to audit (from `artlens train` or `artlens federate`); "
                                                  "with --profiles, the head whose space the profiles live in."),
    profiles: Path = typer.Option(None, "--profiles", help="Audit artist profiles published with this file's settings "
                                                           "(prototypes or DP) instead of the head."),
    artist_column: str = typer.Option(None, "--artist-column", help="Metadata column naming each work's artist "
                                                                    "(with --profiles)."),
    shadows: int = typer.Option(None, "--shadows", help="Shadow models of the LiRA attack, each trained on a random "
                                                        f"half (0: threshold attack only; default: {A.shadows})."),
    shadow_epochs: int = typer.Option(None, "--shadow-epochs", help="Most epochs of a shadow head (default: the "
                                                                    "head's own recipe)."),
    seed: int = typer.Option(None, "--seed", help=f"Seed of the shadows' halves (default: {A.seed})."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write report.md, report.json and roc.png into this folder."),
    collection: Path = collection_option("Collection the head (or the profiles) was made from: its split says "
                                         "which artworks are members."),
    as_json: bool = json_option("Print one JSON object: kind, head, privacy, protects, utility, members, nonmembers, "
                                "attacks{threshold, lira: auc, tpr@1%fpr, tpr@0.1%fpr, fpr, tpr}."),
    quiet: bool = quiet_option(),
):
    """Can an attacker holding the head (or a profile file) tell whether an artwork was trained on?

    Members are the head's training split, non-members its test split (profiles: a random half of
    each artist's works is published, the rest held back). Attacks: the confidence threshold attack
    and LiRA with shadow models on cached features; ROC AUC and TPR at 1 % and 0.1 % FPR.
    """
    from artlens.models import load_head
    from artlens.privacy import audit_privacy
    from artlens.progress import Reporter
    from artlens.settings import with_changes

    config = with_changes(A, {"shadows": shadows, "shadow_epochs": shadow_epochs, "seed": seed})
    model = load_head(head)
    coll = open_collection(collection)
    audit = audit_privacy(coll, model, profiles, artist_column, config, Reporter(not quiet))
    if out is not None:
        from artlens.reports.privacy import write_privacy_report

        files = write_privacy_report(audit, out)
        audit["files"] = {k: str(v) for k, v in files.items()}
    if as_json:
        print_json(audit)
        return
    from artlens.reports.privacy import TPR_KEYS, privacy_label

    table = Table("attack", "ROC AUC", "TPR @ 1 % FPR", "TPR @ 0.1 % FPR",
                  title=f"membership inference: {audit['kind']} {audit['head']}, {privacy_label(audit['privacy'])}, "
                        f"{audit['members']} members / {audit['nonmembers']} non-members")
    for name, roc in audit["attacks"].items():
        table.add_row(name, f"{roc['auc']:.4f}", *(f"{roc[k]:.4f}" for k in TPR_KEYS))
    console = make_console()
    console.print(table)
    utility = ", ".join(f"{k} {v:.4f}" for k, v in audit["utility"].items() if isinstance(v, float))
    err = make_console(stderr=True)
    err.print(f"  held-out utility: {utility}; protects: {audit['protects']}")
    for note in audit.get("notes", []):
        err.print(f"  note: {note}")
    if out is not None:
        err.print(f"  wrote {', '.join(audit['files'].values())}")
