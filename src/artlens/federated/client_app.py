"""The Flower ClientApp of an institution: thin handlers that turn messages into calls of
:class:`~artlens.federated.participant.Participant` and its answers back into records.

Message types (the server sends them in this order):

- ``query.describe``: classes held and number of artworks;
- ``query.stats``: sums for fitting the input transforms (mean, PCA power step, moments);
- ``query.setup``: the fitted input transforms (and fedstyle's style statistics) and the run
  settings, kept in the node's state;
- ``query.prototypes``: fedstyle's first style prototypes;
- ``train``: E local epochs from the global weights (legacy FitIns format under SecAgg+);
- ``evaluate``: the global head on the institution's validation artworks;
- ``query.result``: the final head, which becomes the collection's ``learned`` aspect.

An institution that cannot take part answers with an error that names it and says what to do; the
server leaves it out and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from artlens.errors import ArtlensError
from artlens.federated.head import wire_keys
from artlens.federated.institution import InstitutionSource
from artlens.federated.participant import Participant, Settings
from artlens.federated.privacy import clip_when_asked, secagg_when_asked

ERROR_CODE = 4200  # an institution cannot take part: the reason names it and the fix
STATE_SETTINGS = "artlens.settings"
STATE_TRANSFORMS = "artlens.transforms"
STATE_STYLES = "artlens.styles"
LEGACY_FITINS = "fitins.parameters"

Locator = Callable[[Context], InstitutionSource]
log = logging.getLogger("artlens.federated")


def source_from_node_config(context: Context) -> InstitutionSource:
    """A deployed institution: ``--node-config "collection='PATH' institution='NAME' [partition='KEYS']
    [device='cuda']"``."""
    node = context.node_config
    if "collection" not in node:
        raise ArtlensError("this supernode was started without a collection",
                           "start it with `artlens federate client --collection PATH --institution NAME --server HOST:PORT`")
    name = str(node.get("institution") or f"node-{context.node_id}")
    features = tuple(f for f in str(node.get("features", "")).split(",") if f)
    attach = str(node.get("attach", "true")).lower() not in ("0", "false", "no")
    return InstitutionSource(name, str(node["collection"]), str(node.get("partition", "")), features, attach)


def to_arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()}


def to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def _config(msg: Message) -> dict:
    record = msg.content.config_records.get("config")
    return dict(record) if record is not None else {}


def _settings(msg: Message, context: Context) -> Settings:
    config = _config(msg)
    if "head" in config and "federation" in config:
        return _on_node_device(Settings.from_record(config), context)
    stored = context.state.config_records.get(STATE_SETTINGS)
    if stored is None:
        raise ArtlensError("this institution has not been set up for the current run",
                           "restart its client so that it joins the next run from the start")
    return _on_node_device(Settings.from_record(stored), context)


def _on_node_device(settings: Settings, context: Context) -> Settings:
    """The run's settings with the device this node trains on (``device`` in its node config: each
    institution picks its own; without one, the run's ``training.device``)."""
    device = str(context.node_config.get("device", "") or "")
    if not device:
        return settings
    return Settings(settings.head_json, settings.federation.on_device(device))


def _kept(context: Context, key: str) -> dict[str, np.ndarray] | None:
    record = context.state.array_records.get(key)
    return to_arrays(record) if record is not None else None


def _participant(msg: Message, context: Context, source: InstitutionSource) -> Participant:
    return Participant(source, _settings(msg, context), _kept(context, STATE_TRANSFORMS), _kept(context, STATE_STYLES))


def _reply(msg: Message, arrays: dict | None = None, metrics: dict | None = None, config: dict | None = None) -> Message:
    content = RecordDict()
    if arrays is not None:
        content["arrays"] = to_record(arrays)
    content["metrics"] = MetricRecord(metrics or {})
    if config:
        content["info"] = ConfigRecord(config)
    return Message(content, reply_to=msg)


def _guarded(locate: Locator, handler):
    """Run a handler; an ArtlensError becomes an error reply that names the institution and the fix."""

    def run(msg: Message, context: Context) -> Message:
        name = "this institution"
        try:
            source = locate(context)
            name = f"institution {source.name!r}"
            return handler(msg, context, source)
        except ArtlensError as exc:
            reason = exc.message if exc.message.startswith("institution") else f"{name}: {exc.message}"
            if exc.hint:
                reason += f" (fix: {exc.hint})"
            log.warning(reason)
            return Message(Error(code=ERROR_CODE, reason=reason), reply_to=msg)

    return run


def create_client_app(locate: Locator = source_from_node_config) -> ClientApp:
    """A ClientApp whose institutions are found by ``locate(context)``."""
    app = ClientApp()

    def describe(msg, context, source):
        info, metrics = Participant(source, _settings(msg, context)).describe()
        return _reply(msg, metrics=metrics, config=info)

    def stats(msg, context, source):
        stage = str(_config(msg).get("stage", ""))
        arrays = to_arrays(msg.content["arrays"]) if "arrays" in msg.content.array_records else {}
        sums, counts = Participant(source, _settings(msg, context)).statistics(stage, arrays)
        return _reply(msg, arrays=sums, metrics=counts)

    def setup(msg, context, source):
        settings = _settings(msg, context)
        arrays = to_arrays(msg.content["arrays"])
        transforms = {k: v for k, v in arrays.items() if k.startswith("transforms.")}
        styles = {k: v for k, v in arrays.items() if k.startswith("styles.")}
        Participant(source, settings, transforms).head()  # fails here, not mid-round, if they do not fit
        context.state[STATE_SETTINGS] = ConfigRecord(settings.to_record())
        context.state[STATE_TRANSFORMS] = to_record(transforms)
        if styles:
            context.state[STATE_STYLES] = to_record(styles)
        return _reply(msg, metrics={"ready": 1})

    def prototypes(msg, context, source):
        participant = _participant(msg, context, source)
        arrays, metrics = participant.prototypes(to_arrays(msg.content["arrays"]))
        return _reply(msg, arrays=arrays, metrics=metrics)

    def train(msg, context, source):
        participant = _participant(msg, context, source)
        if LEGACY_FITINS in msg.content.array_records:  # SecAgg+ drives training with the legacy format
            return _train_legacy(msg, participant)
        config = _config(msg)
        participant.check_fingerprint(config.get("head-fingerprint"))
        arrays, metrics = participant.train(to_arrays(msg.content["arrays"]), int(config.get("server-round", 1)))
        return _reply(msg, arrays=arrays, metrics=metrics)

    def evaluate(msg, context, source):
        participant = _participant(msg, context, source)
        participant.check_fingerprint(_config(msg).get("head-fingerprint"))
        return _reply(msg, metrics=participant.evaluate(to_arrays(msg.content["arrays"])))

    def result(msg, context, source):
        config = _config(msg)
        return _reply(msg, metrics=Participant(source, _settings(msg, context)).keep_result(
            to_arrays(msg.content["arrays"]), str(config["head"]), str(config.get("info", "{}"))))

    app.query("describe")(_guarded(locate, describe))
    app.query("stats")(_guarded(locate, stats))
    app.query("setup")(_guarded(locate, setup))
    app.query("prototypes")(_guarded(locate, prototypes))
    app.query("result")(_guarded(locate, result))
    app.train(mods=[secagg_when_asked, clip_when_asked])(_guarded(locate, train))
    app.evaluate()(_guarded(locate, evaluate))
    return app


def _train_legacy(msg: Message, participant: Participant) -> Message:
    """Training in Flower's FitIns/FitRes record format, which the SecAgg+ workflow speaks: the arrays
    travel as an ordered list, in the order of ``wire_keys``."""
    import flwr.compat.common.recorddict_compat as compat
    from flwr.common import (
        Code,
        FitRes,
        Status,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )

    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    head = participant.head()
    keys = wire_keys(head, participant.fedstyle)
    values = parameters_to_ndarrays(fitins.parameters)
    if len(values) != len(keys):
        raise ArtlensError(f"{participant.who} received {len(values)} arrays, its head has {len(keys)}",
                           "run the same artlens version and head settings everywhere")
    participant.check_fingerprint(str(fitins.config.get("head-fingerprint", "")))
    arrays, metrics = participant.train(dict(zip(keys, values)), int(fitins.config.get("server-round", 1)))
    from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

    # SecAgg+ weights by the reported count; under DP every institution counts once (noise is calibrated to C/K)
    weight = 1 if KEY_CLIPPING_NORM in fitins.config else int(metrics["num-examples"])
    fitres = FitRes(Status(Code.OK, "ok"), ndarrays_to_parameters([arrays[k] for k in keys]), weight,
                    {k: v for k, v in metrics.items() if k != "num-examples"})
    return Message(compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=msg)


app = create_client_app()
