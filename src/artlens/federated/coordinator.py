"""The server's side of a federated run, in phases:

1. wait for the institutions, ask each what it holds (``describe``) and refuse, by name, those that
   cannot take part; the classes are the union of theirs;
2. fit the head's input transforms from their sums (``transforms.fit_transforms``) and, for fedstyle,
   the style statistics of its virtual styles; send them once;
3. (fedstyle) collect the first style prototypes;
4. train: Flower's ``Strategy.start`` (or, under SecAgg+, the legacy ``DefaultWorkflow`` with
   ``SecAggPlusWorkflow``), logging every round;
5. keep the best round (the institutions' validation accuracy), score it on the held-out split,
   save the head and the metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from artlens.errors import ArtlensError
from artlens.federated.client_app import to_arrays, to_record
from artlens.federated.config import ServerSettings
from artlens.federated.head import (
    PROTO_KEYS,
    build_head,
    config_to_json,
    fingerprint,
    head_arrays,
    input_specs,
    load_head_arrays,
    transform_arrays,
    wire_keys,
)
from artlens.federated.heldout import HeldOut
from artlens.federated.local import record_plan
from artlens.federated.participant import Settings
from artlens.federated.privacy import (
    RdpAccountant,
    calibrate_noise,
    secagg_workflow,
    with_differential_privacy,
)
from artlens.federated.rounds import RoundLog, TrafficMeter, plot_rounds
from artlens.federated.strategies import (
    Observed,
    create_legacy_strategy,
    create_strategy,
)
from artlens.federated.transforms import fit_transforms, style_statistics
from artlens.train.privacy import steps_per_epoch

RECORD_SCOPE = ("record-level (epsilon, delta) of each institution's training artworks (add or remove one) against "
                "anyone who sees its updates or the final head; the one-off input and style statistics of the set-up "
                "are exact sums and the validation metrics exact means, outside the accountant")

log = logging.getLogger("artlens.federated")


@dataclass
class FederatedResult:
    head: object
    summary: dict  # what metrics.json holds
    rejected: dict[str, str]
    run_dir: str = ""  # where metrics.json, curves.png and head.pt were written


class MeteredGrid(Grid):
    """A grid that counts message bytes and only lets the run see the institutions it accepted."""

    def __init__(self, inner: Grid, meter: TrafficMeter):
        self.inner = inner
        self.meter = meter
        self.allowed: set[int] | None = None

    def set_run(self, run) -> None:
        self.inner.set_run(run)

    @property
    def run(self):
        return self.inner.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        ids = list(self.inner.get_node_ids())
        return ids if self.allowed is None else [i for i in ids if i in self.allowed]

    def push_messages(self, messages):
        messages = list(messages)
        self.meter.down += sum(_size(m) for m in messages)
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids):
        replies = list(self.inner.pull_messages(message_ids))
        self.meter.up += sum(_size(m) for m in replies)
        return replies

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        self.meter.down += sum(_size(m) for m in messages)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        self.meter.up += sum(_size(m) for m in replies)
        return replies


def _size(msg: Message) -> int:
    if msg.has_error():
        return len(msg.error.reason or "")
    return sum(_record_bytes(record) for record in msg.content.values())


def _record_bytes(record) -> int:
    """Payload bytes of a record (Flower's ``count_bytes`` fails on empty lists, which SecAgg+ sends)."""
    if isinstance(record, ArrayRecord):
        return record.count_bytes()
    total = 0
    for key, value in record.items():
        values = value if isinstance(value, list) else [value]
        total += len(key) + sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in values)
    return total


class Coordinator:
    """Runs one federation on a grid. ``heldout``: an evaluation set the server holds (else read from
    ``settings.eval_collection`` when given)."""

    def __init__(self, settings: ServerSettings, heldout: HeldOut | None = None, aspects=None):
        self.settings = settings if settings.run_dir else settings.with_run_dir()
        self.config = settings.federation
        self.heldout = heldout
        self.aspects = aspects
        self.rejected: dict[int, str] = {}
        self.institutions: dict[int, dict] = {}

    # -- messaging ------------------------------------------------------------------------------
    def _ask(self, grid: MeteredGrid, action: str, arrays: dict | None = None, config: dict | None = None,
             nodes: Iterable[int] | None = None) -> dict[int, Message]:
        """Send ``query.<action>`` to the accepted institutions; those that fail are refused from now on."""
        nodes = list(self.institutions if nodes is None else nodes)
        content = RecordDict({"config": ConfigRecord(config or {})})
        if arrays is not None:
            content["arrays"] = to_record(arrays)
        messages = [Message(content, dst_node_id=n, message_type=f"query.{action}") for n in nodes]
        replies = {r.metadata.src_node_id: r for r in grid.send_and_receive(messages, timeout=self.config.round_timeout)}
        ok = {}
        for node in nodes:
            reply = replies.get(node)
            if reply is None:
                self._refuse(node, f"did not answer the {action} request within {self.config.round_timeout:.0f} s")
            elif reply.has_error():
                self._refuse(node, reply.error.reason)
            else:
                ok[node] = reply
        return ok

    def _refuse(self, node: int, reason: str) -> None:
        name = self.institutions.pop(node, {}).get("name")
        reason = reason if name is None or name in reason else f"institution {name!r}: {reason}"
        self.rejected[node] = reason
        log.warning("left out of the federation: %s", reason)

    def _wait_for_nodes(self, grid: Grid) -> list[int]:
        wanted = self.settings.institutions or self.config.min_clients
        deadline = time.monotonic() + self.settings.wait_seconds
        while True:
            nodes = sorted(grid.get_node_ids())
            if len(nodes) >= wanted:
                return nodes
            if time.monotonic() > deadline:
                if len(nodes) >= self.config.min_clients:
                    return nodes
                raise ArtlensError(f"only {len(nodes)} institution(s) connected within {self.settings.wait_seconds:.0f} s; "
                                   f"{wanted} expected", "start their clients with `artlens federate client "
                                   "--collection PATH --institution NAME --server HOST:PORT`")
            time.sleep(1.0)

    # -- phases ---------------------------------------------------------------------------------
    def run(self, grid: Grid, context=None) -> FederatedResult:
        cfg = self.config
        if cfg.dp and cfg.strategy == "fedadam":
            raise ArtlensError("differential privacy is not available with fedadam: its server optimiser would "
                               "rescale the noised mean", "use --strategy fedavg, fedprox or fedstyle with --dp-epsilon")
        started = time.perf_counter()
        meter = TrafficMeter()
        grid = MeteredGrid(grid, meter)
        nodes = self._wait_for_nodes(grid)
        train_config = cfg.train_config()
        specs = input_specs(cfg.features, train_config.head, self.aspects)

        # 1. who holds what
        probe = Settings(config_to_json(train_config.head_config(specs, cfg.label)), cfg)
        self.institutions = {n: {} for n in nodes}
        for node, reply in self._ask(grid, "describe", config=probe.to_record()).items():
            info, metrics = reply.content["info"], reply.content["metrics"]
            self.institutions[node] = {"name": str(info["institution"]), "classes": list(info["classes"]),
                                       "class_counts": list(info["class-counts"]), "n": int(metrics["num-examples"]),
                                       "n_val": int(metrics["num-val"]), "notes": list(info.get("notes", []))}
        self._check_enough("describe")
        classes = sorted({c for i in self.institutions.values() for c in i["classes"]})
        if len(classes) < 2:
            raise ArtlensError(f"the institutions hold a single {cfg.label!r} class between them ({classes[0]})",
                               "a head needs at least two classes: add institutions with other classes")
        head = build_head(train_config.head_config(specs, cfg.label, classes), cfg.training.seed)
        settings = Settings(config_to_json(head.config), cfg)
        grid.allowed = set(self.institutions)

        # 2. input transforms from aggregate statistics
        def query(stage, arrays):
            replies = self._ask(grid, "stats", arrays, {**settings.to_record(), "stage": stage})
            return [(to_arrays(r.content["arrays"]), dict(r.content["metrics"])) for r in replies.values()]

        fit_transforms(head, query, cfg.pca_iterations, cfg.training.seed)
        setup = transform_arrays(head)
        if cfg.strategy == "fedstyle" and cfg.virtual_styles:
            setup.update(style_statistics(head, query))
        self._ask(grid, "setup", setup, settings.to_record())
        self._check_enough("setup")
        grid.allowed = set(self.institutions)
        fedstyle = cfg.strategy == "fedstyle"
        initial = head_arrays(head, fedstyle)
        if fedstyle:
            initial.update(self._first_prototypes(grid, initial))

        heldout = self._heldout(specs)
        names = {i["name"]: {"n": i["n"], "n_val": i["n_val"], "classes": i["classes"]} for i in self.institutions.values()}
        header = {"strategy": cfg.strategy, "settings": cfg.to_run_config(), "institutions": names,
                  "rejected": {str(k): v for k, v in self.rejected.items()}, "classes": classes,
                  "heldout": heldout.source if heldout else None, "head_fingerprint": fingerprint(head.config)}
        if cfg.dp:
            header["dp_scope"] = ("institution-level (epsilon, delta) of the training rounds; the one-off input and "
                                  "style statistics of the set-up are exact sums, outside the accountant")
        record_privacy = self._record_privacy()
        if record_privacy is not None:
            header["dp_records_scope"] = RECORD_SCOPE
        run_dir = Path(self.settings.run_dir)
        round_log = RoundLog(run_dir / "metrics.json", self.settings.monitor, meter, header, started)
        if heldout is not None:
            round_log.header["initial_test"] = self._score(head, initial, fedstyle, heldout)
        round_log.start()
        # 4. rounds
        if cfg.secagg:
            final, epsilon = self._train_secagg(grid, context, head, initial, heldout, round_log)
        else:
            final, epsilon = self._train(grid, head, initial, heldout, round_log)
        # 5. the kept round
        kept = round_log.best_arrays or final
        load_head_arrays(head, kept, fedstyle, "the server")
        test = self._score(head, kept, fedstyle, heldout) if heldout is not None else {}
        head.info = {"labels": [cfg.label], "loss": "fedstyle" if fedstyle else cfg.training.loss,
                     "config": train_config.as_dict(), "federated": {
                         "strategy": cfg.strategy, "rounds": cfg.rounds, "local_epochs": cfg.local_epochs,
                         "institutions": names, "rejected": list(self.rejected.values()), "best_round": round_log.best_round,
                         "secagg": cfg.secagg, "dp": {"epsilon": epsilon, "delta": cfg.dp_delta, "clip": cfg.dp_clip} if cfg.dp else None},
                     "test": {k.replace("test-", ""): v for k, v in test.items()}, "privacy": record_privacy,
                     "trained_on": f"federated: {len(names)} institutions", "counts": {"train": sum(i["n"] for i in names.values())}}
        head.weights_changed()
        head_path = head.save(run_dir / "head.pt")
        if self.settings.out:
            head.save(self.settings.out)
        final_scores = {"head": str(head_path), "head_id": head.id, "kept_round": round_log.best_round,
                        "accuracy": test.get("test-acc"), "delta": cfg.dp_delta if cfg.dp else None,
                        "record_epsilon": record_privacy["epsilon"] if record_privacy else None,
                        "record_delta": record_privacy["delta"] if record_privacy else None}
        if self.settings.share_result:
            state = {k: v.detach().cpu().numpy() for k, v in head.state_dict().items()}
            done = self._ask(grid, "result", state, {"head": config_to_json(head.config),
                                                     "info": json.dumps(head.info, default=str)})
            final_scores["institutions_saved"] = len(done)
        # the record ends with the held-out mAP of the kept head and the privacy spent (None without DP)
        final_scores.update({"map": test.get("test-map"), "epsilon": epsilon if cfg.dp else None})
        round_log.write(final_scores)
        try:
            plot_rounds(round_log.rounds, run_dir / "curves.png", f"{cfg.strategy}: {len(names)} institutions",
                        round_log.best_round)
        except Exception as exc:  # curves are a convenience; the JSON is the record
            log.warning("could not draw the curves: %s", exc)
        return FederatedResult(head, round_log.summary(final_scores), {str(k): v for k, v in self.rejected.items()},
                               str(run_dir))

    def _record_privacy(self) -> dict | None:
        """The record-level DP spent by the institution that spends most, if every round trains it
        (each institution runs the same plan, ``local.record_plan``, on its own artworks)."""
        cfg = self.config
        if not cfg.dp_records:
            return None
        spent = {}
        for info in self.institutions.values():
            n = info["n"]
            steps = cfg.rounds * cfg.local_epochs * steps_per_epoch(n, min(cfg.training.batch_size, n))
            spent[info["name"]] = record_plan(cfg, n).record(steps)
        worst = max(spent.values(), key=lambda r: r["epsilon"])
        return {**worst, "per_institution": {k: v["epsilon"] for k, v in spent.items()}, "scope": RECORD_SCOPE}

    def _check_enough(self, phase: str) -> None:
        if len(self.institutions) < self.config.min_clients:
            refused = "; ".join(self.rejected.values()) or "none connected"
            raise ArtlensError(f"only {len(self.institutions)} institution(s) can take part after {phase} "
                               f"(at least {self.config.min_clients} needed): {refused}",
                               "fix the institutions named above, or lower --min-clients")

    def _first_prototypes(self, grid, initial) -> dict[str, np.ndarray]:
        replies = self._ask(grid, "prototypes", initial)
        weights = {n: float(r.content["metrics"]["num-examples"]) for n, r in replies.items()}
        total = sum(weights.values()) or 1.0
        return {k: sum(to_arrays(r.content["arrays"])[k] * (weights[n] / total) for n, r in replies.items())
                for k in PROTO_KEYS}

    def _heldout(self, specs) -> HeldOut | None:
        if self.heldout is None and self.settings.eval_collection:
            self.heldout = HeldOut.from_collection(self.settings.eval_collection, specs, self.config.label,
                                                   self.settings.eval_split, training=self.config.training)
        return self.heldout

    @staticmethod
    def _score(head, arrays, fedstyle, heldout: HeldOut) -> dict[str, float]:
        load_head_arrays(head, arrays, fedstyle, "the server")
        return heldout.score(head)

    def _noise(self, clients: int) -> tuple[float, RdpAccountant | None]:
        cfg = self.config
        if not cfg.dp:
            return 0.0, None
        sigma = calibrate_noise(cfg.dp_epsilon, cfg.dp_delta, cfg.rounds)
        log.info("differential privacy: noise multiplier %.3f for epsilon %.2f after %d rounds (delta %g), %d institutions",
                 sigma, cfg.dp_epsilon, cfg.rounds, cfg.dp_delta, clients)
        return sigma, RdpAccountant(cfg.dp_delta)

    def _train(self, grid, head, initial, heldout, round_log: RoundLog) -> tuple[dict, float | None]:
        cfg = self.config
        fedstyle = cfg.strategy == "fedstyle"
        clients = len(self.institutions)
        strategy = create_strategy(cfg, clients)
        sigma, accountant = self._noise(clients)
        if accountant is not None:
            sampled = max(int(clients * cfg.fraction_train), min(cfg.min_clients, clients))
            strategy = with_differential_privacy(strategy, sigma, cfg.dp_clip, sampled)
        strategy = Observed(strategy, round_log.on_train, lambda r, m: round_log.on_evaluate(m))
        scorer = build_head(head.config, cfg.training.seed)
        scorer.load_state_dict(head.state_dict())

        def evaluate_fn(server_round, arrays):
            if server_round == 0:
                return None
            if accountant is not None:
                accountant.compose(sigma)
            test = self._score(scorer, to_arrays(arrays), fedstyle, heldout) if heldout is not None else None
            row = round_log.end_round(server_round, test, accountant.epsilon() if accountant else None,
                                      len(list(grid.get_node_ids())))
            log.info("round %d: %s", server_round, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
            return MetricRecord(test) if test else None

        fp = fingerprint(head.config)
        result = strategy.start(grid, to_record(initial), num_rounds=cfg.rounds, timeout=cfg.round_timeout,
                                train_config=ConfigRecord({"head-fingerprint": fp}),
                                evaluate_config=ConfigRecord({"head-fingerprint": fp}), evaluate_fn=evaluate_fn)
        final = to_arrays(result.arrays) if len(result.arrays) else initial
        return final, (accountant.epsilon() if accountant else None)

    def _train_secagg(self, grid, context, head, initial, heldout, round_log: RoundLog) -> tuple[dict, float | None]:
        """Rounds through Flower's SecAgg+ workflow: the server only ever sees the masked sum (with DP,
        of clipped updates, to which it adds the noise)."""
        from flwr.common import ndarrays_to_parameters
        from flwr.server import LegacyContext, ServerConfig
        from flwr.server.workflow import DefaultWorkflow

        cfg = self.config
        fedstyle = cfg.strategy == "fedstyle"
        keys = wire_keys(head, fedstyle)
        fp = fingerprint(head.config)
        scorer = build_head(head.config, cfg.training.seed)
        scorer.load_state_dict(head.state_dict())
        pending_fit: dict = {}
        clients = len(self.institutions)
        sigma, accountant = self._noise(clients)

        def evaluate_fn(server_round, ndarrays, _config):
            # institutions do not evaluate under SecAgg+ (fraction_evaluate 0): a round ends here
            if server_round == 0:
                return None
            if accountant is not None:
                accountant.compose(sigma)
            arrays = dict(zip(keys, ndarrays))
            round_log.on_train(server_round, arrays, pending_fit.pop("metrics", None))
            test = self._score(scorer, arrays, fedstyle, heldout) if heldout is not None else None
            round_log.end_round(server_round, test, accountant.epsilon() if accountant else None,
                                len(list(grid.get_node_ids())))
            return (test.get("test-loss", 0.0), test) if test else None

        def fit_metrics(results):
            pending_fit["metrics"] = _weighted(results)
            return pending_fit["metrics"]

        def round_config(server_round):
            return {"server-round": server_round, "head-fingerprint": fp}

        strategy = create_legacy_strategy(
            cfg.replace(fraction_evaluate=0.0), clients, ndarrays_to_parameters([initial[k] for k in keys]), evaluate_fn,
            round_config, round_config, None, fit_metrics)
        if accountant is not None:
            from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping

            sampled = max(int(clients * cfg.fraction_train), min(cfg.min_clients, clients))
            strategy = DifferentialPrivacyClientSideFixedClipping(strategy, sigma, cfg.dp_clip, sampled)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=cfg.rounds, round_timeout=cfg.round_timeout),
                               strategy=strategy)
        max_weight = 1.0 if accountant is not None else float(max(i["n"] for i in self.institutions.values()))
        workflow = DefaultWorkflow(fit_workflow=secagg_workflow(clients, cfg.secagg_shares, cfg.secagg_threshold,
                                                                max_weight, cfg.round_timeout))
        workflow(grid, legacy)
        return (round_log.last_arrays or initial), (accountant.epsilon() if accountant else None)


def _weighted(results) -> dict:
    total = sum(n for n, _ in results) or 1
    keys = {k for _, m in results for k in m}
    return {k: sum(n * float(m.get(k, 0.0)) for n, m in results) / total for k in keys}
