"""``report.md``: the report's tables in Markdown, from the same dict that is ``report.json``."""

from __future__ import annotations

from collections.abc import Sequence

from artlens.reports.references import retrieval_reference


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def retrieval_table(rows: Sequence[dict], k: int, references: bool = True) -> str:
    header = ["method", f"P@{k}", f"AP@{k}", f"nDCG@{k}", "mAP", "queries"]
    header += ["paper (WikiArt, same backbone)"] if references else []
    body = []
    for r in rows:
        if "skipped" in r:
            body.append([r["method"], "skipped: " + r["skipped"], "", "", "", ""] + ([""] if references else []))
            continue
        ref = [retrieval_reference(r.get("extractor"))] if references else []
        body.append([r["method"], r[f"p@{k}"], r[f"ap@{k}"], r[f"ndcg@{k}"], r["map"], r["n_queries"]] + ref)
    return table(header, body)


def aicrs_table(rows: Sequence[dict]) -> str:
    body = []
    for r in rows:
        if "skipped" in r:
            body.append([r["model"], "skipped: " + r["skipped"], "", "", "", ""])
        else:
            body.append([r["model"], r.get("accuracy"), r.get("loss"), r.get("map"), f"{r['train_s']:.1f}", r.get("n_test")])
    return table(["model", "accuracy", "loss", "test mAP", "training s", "test artworks"], body)


def annotation_table(result: dict) -> str:
    return table(["column", "method", "top-1", "top-3", "classes", "test", "train"],
                 [[c, r["method"], r["top1"], r["top3"], r["classes"], r["n_test"], r["n_train"]]
                  for c, r in result.items()])


def render_report(d: dict) -> str:
    cfg = d["config"]
    k = cfg["k"]
    out = [f"# Evaluation report: {d['collection']}", "",
           f"Label `{cfg['label']}`: {d['n_labelled']} labelled artworks, {d['n_test']} in the held-out test split "
           f"(seed {cfg['seed']}). Generated {d['at']} on {d['machine']['cpus']} CPUs in "
           f"**{d['seconds'] / 60:.1f} min** (`artlens eval report`).", "", "## Stages", "",
           table(["stage", "status", "seconds / reason"],
                 [[name, s["status"], f"{s['seconds']:.1f}" if "seconds" in s else s.get("reason", "")]
                  for name, s in d["stages"].items()]), ""]
    if d["retrieval"]:
        out += ["## Retrieval (DeepArt layout)", "",
                "Leave-self-out within the test split, relevant = same label. Pretrained vectors as the aspect "
                "indexes store them (PCA 256 fitted on the collection, L2-normalised); learned heads trained on the "
                "train split with early stopping on val.", "", retrieval_table(d["retrieval"], k), ""]
        if "precision_at_k" in d["figures"]:
            out += [f"![P@k curves]({d['figures']['precision_at_k']})", ""]
    if d.get("splits"):
        out += ["## Grouped and random splits", "",
                "The same head on the report's split (grouped: look-alike groups whole in one split, an "
                "approximation of unseen artists) and on a random split, each beside the best pretrained input "
                "on its own test split.", "",
                table(["model", "split", "mAP", "top-1", "best pretrained mAP", "x best", "test"],
                      [[r["model"], r["split"], r["map"], r["top1"], r["best_pretrained_map"], r["x_best"], r["n_test"]]
                       for r in d["splits"]]), ""]
    if d["annotation"]:
        out += ["## Annotation", "", "Top-1 / top-3 on the test split: the cross-entropy head's classifier for the "
                "label it was trained on, a logistic-regression probe on content + style vectors for other columns.",
                "", annotation_table(d["annotation"]), ""]
    if d["aicrs"]:
        out += ["## AICRS Table 4 layout", "",
                "Accuracy and cross-entropy on the test split, training wall time (federated: the whole simulation, "
                "set-up included).", "", aicrs_table(d["aicrs"]), ""]
        if "training_curves" in d["figures"]:
            out += [f"![training curves]({d['figures']['training_curves']})", ""]
    if d["embedding_map"]:
        m = d["embedding_map"]
        out += ["## Embedding map", "", f"{m['method']} of the {m['source']} embeddings, {m['points']} test artworks.",
                "", f"![embedding map]({d['figures']['embedding_map']})", ""]
    return "\n".join(out)
