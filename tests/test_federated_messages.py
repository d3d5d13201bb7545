"""The whole protocol in process (ClientApp handlers behind a local grid, no Ray): every message an
institution sends is inspected and carries only model weights and aggregate statistics."""

import json

import numpy as np
import pytest
from feature_collections import make_feature_collection

from artlens.federated.config import FederatedConfig
from artlens.federated.institution import InstitutionSource
from artlens.federated.partition import by_column, dirichlet
from artlens.settings import with_changes

flwr = pytest.importorskip("flwr")

from flwr.app import Context, Message, RecordDict  # noqa: E402
from flwr.common.serde import message_from_proto, message_to_proto, recorddict_to_proto  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402

from artlens.federated.client_app import create_client_app  # noqa: E402
from artlens.federated.coordinator import Coordinator, ServerSettings  # noqa: E402
from artlens.federated.head import head_arrays  # noqa: E402
from artlens.federated.heldout import HeldOut  # noqa: E402
from artlens.federated.simulation import SimulatedInstitutions  # noqa: E402

CLASSES = ("baroque", "cubism", "impressionism", "ukiyo-e")
FEATURES = ("colour-hist", "gram-block4")


class LocalGrid(Grid):
    """Delivers each message to an in-process ClientApp through Flower's wire format, and keeps every
    reply (as sent) for inspection."""

    def __init__(self, app, sources):
        self.app = app
        self.contexts = {100 + i: Context(run_id=1, node_id=100 + i, node_config={"partition-id": i},
                                          state=RecordDict(), run_config={}) for i in range(len(sources))}
        self.names = {100 + i: s.name for i, s in enumerate(sources)}
        self.sent: list[tuple[str, Message]] = []
        self.down: list[Message] = []

    def set_run(self, run):
        pass

    @property
    def run(self):
        from types import SimpleNamespace

        return SimpleNamespace(run_id=1)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self):
        return list(self.contexts)

    def push_messages(self, messages):
        raise NotImplementedError

    def pull_messages(self, message_ids):
        raise NotImplementedError

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            self.down.append(msg)
            node = msg.metadata.dst_node_id
            wire = message_from_proto(message_to_proto(msg))  # each institution gets its own copy
            reply = self.app(wire, self.contexts[node])
            self.sent.append((self.names[node], reply))
            replies.append(message_from_proto(message_to_proto(reply)))
        return replies


@pytest.fixture(autouse=True)
def server_identity():
    """Instruction messages take their run and node ids from the process's task identity."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    coll = make_feature_collection(tmp_path_factory.mktemp("fedmsg") / "c", CLASSES, per_class=(37, 23, 29, 31),
                                   extractors=FEATURES)
    yield coll
    coll.close()


def config(**changes):
    base = FederatedConfig(**{**dict(features=FEATURES, rounds=2, local_epochs=1, pca_iterations=2, round_timeout=30.0),
                              **changes})
    return with_changes(base, {"training__head__hidden": (24,), "training__head__dim": 12,
                               "training__head__reduce_dims": 6})


def federate(collection, tmp_path, cfg, part=None, extra_sources=(), attach=False, run="run", out="",
             grid_class=LocalGrid):
    md5s = collection.catalog.md5s()
    labels = {md5s[i]: v for i, v in collection.catalog.column("style").items()}
    part = part or dirichlet(labels, 3, alpha=1.0, seed=0)
    files = part.write_institution_files(tmp_path / "keys")
    sources = [InstitutionSource(n, str(collection.root), str(files[n]), attach=attach) for n in part.names]
    sources += list(extra_sources)
    grid = grid_class(create_client_app(SimulatedInstitutions(sources)), sources)
    heldout = HeldOut.from_collection(str(collection.root), _specs(cfg), "style", "test")
    settings = ServerSettings(cfg, str(tmp_path / run), str(out), institutions=len(sources), wait_seconds=1)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    result = Coordinator(settings, heldout).run(grid, context)
    return result, grid, sources


def _specs(cfg):
    from artlens.federated.head import input_specs

    return input_specs(cfg.features, cfg.training.head)


@pytest.mark.parametrize("strategy", ["fedavg", "fedstyle"])
def test_every_reply_carries_only_weights_and_aggregate_statistics(collection, tmp_path, strategy):
    from artlens.federated.institution import load_institution

    result, grid, sources = federate(collection, tmp_path, config(strategy=strategy))
    assert not result.rejected and len(result.summary["rounds"]) == 2
    assert result.summary["map"] is not None and result.summary["epsilon"] is None
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(saved)[-2:] == ["map", "epsilon"]  # the record ends with the held-out mAP and the privacy spent
    assert saved["map"] == result.summary["map"] and saved["epsilon"] is None
    assert [r["round"] for r in saved["rounds"]] == [1, 2]
    assert all(r["bytes_up"] > 0 and r["bytes_down"] > 0 and r["test_map"] is not None for r in saved["rounds"])
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    head = result.head
    n_classes, dim_total = len(CLASSES), sum(s.dim for s in head.config.inputs)
    allowed = {tuple(v.shape) for v in head.state_dict().values()}
    allowed |= {(n_classes, head.config.dim), (n_classes,), (n_classes, dim_total), (dim_total, dim_total)}
    allowed |= {(s.raw_dim,) for s in head.config.inputs} | {(s.raw_dim, s.dim + 16) for s in head.config.inputs}
    allowed |= {(s.dim,) for s in head.config.inputs}

    md5s = collection.catalog.md5s()
    secrets = [m.encode() for m in md5s.values()] + [str(collection.root).encode(), b"/synthetic/"]
    secrets += [open(s.keys_file, "rb").read()[:32] for s in sources] + [s.keys_file.encode() for s in sources]
    item_bytes, item_rows = [], []
    for spec in head.config.inputs:
        ids, raw = collection.raw_vectors(spec.extractor)
        item_bytes += [row.tobytes()[:64] for row in raw]
        item_rows.append(raw)
    kinds = set()
    assert len(load_institution(sources[0], head.config.inputs, "style").train) > 1
    for name, reply in grid.sent:
        assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
        kinds.add(reply.metadata.message_type)
        # text and bytes can only travel in config and metric records; arrays are checked as numbers below
        records = RecordDict({k: v for k, v in reply.content.items() if k not in reply.content.array_records})
        wire = recorddict_to_proto(records).SerializeToString()
        for secret in secrets:
            assert secret not in wire, f"{name} sent {secret[:40]!r}"
        for chunk in item_bytes:
            assert chunk not in wire, f"{name} sent an artwork's feature vector"
        for key, record in reply.content.metric_records.items():
            assert all(isinstance(v, (int, float)) for v in record.values()), f"{name}: per-item metrics in {key}"
        for key, record in reply.content.config_records.items():
            assert key == "info" and set(record) <= {"institution", "classes", "class-counts", "notes"}
            assert set(record["classes"]) <= set(CLASSES) and record["institution"] == name
            assert len(record["class-counts"]) == len(record["classes"])
        for key, record in reply.content.array_records.items():
            for array_name, array in record.items():
                values = array.numpy()
                assert values.dtype.kind == "f", f"{name}: {array_name} is not a numeric array"
                assert tuple(values.shape) in allowed, f"{name}: {array_name} {values.shape} is no parameter or statistic"
                for raw in item_rows:
                    if values.ndim and values.shape[-1] == raw.shape[1]:
                        flat = values.reshape(-1, raw.shape[1]).astype(np.float64)
                        normed = raw / np.linalg.norm(raw, axis=1, keepdims=True)
                        for candidates in (raw, normed):
                            gaps = np.abs(flat[:, None, :] - candidates[None, :, :]).max(axis=2)
                            assert gaps.min() > 1e-6, f"{name}: {array_name} holds one artwork's vector"
    expected = {"query.describe", "query.stats", "query.setup", "train", "evaluate", "query.result"}
    assert expected <= kinds
    if strategy == "fedstyle":
        assert "query.prototypes" in kinds
    # the server only ever sent weights, its own statistics and settings down
    assert all(set(m.content.config_records) <= {"config"} for m in grid.down)


def test_dp_clips_each_update_and_reports_epsilon(collection, tmp_path):
    clip = 0.05
    result, grid, _ = federate(collection, tmp_path, config(strategy="fedavg", dp_epsilon=8.0, dp_clip=clip))
    trains = [m for m in grid.down if m.metadata.message_type == "train"]
    replies = [r for _, r in grid.sent if r.metadata.message_type == "train"]
    assert len(trains) == len(replies) == 6
    for sent, reply in zip(trains, replies):
        before = {k: v.numpy() for k, v in sent.content["arrays"].items()}
        after = {k: v.numpy() for k, v in reply.content["arrays"].items()}
        norm = np.sqrt(sum(float(((after[k] - before[k]) ** 2).sum()) for k in before))
        assert norm <= clip * (1 + 1e-4)
    assert 0 < result.summary["epsilon"] <= 8.0
    assert result.summary["rounds"][-1]["epsilon"] == result.summary["epsilon"]
    assert result.head.info["federated"]["dp"]["epsilon"] == result.summary["epsilon"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(saved)[-2:] == ["map", "epsilon"] and saved["epsilon"] == result.summary["epsilon"]
    assert saved["delta"] == 1e-5 and 0 < saved["rounds"][0]["epsilon"] < saved["epsilon"]


def test_institutions_that_cannot_take_part_are_named_and_the_others_go_on(collection, tmp_path):
    md5s = collection.catalog.md5s()
    labels = {md5s[i]: v for i, v in collection.catalog.column("style").items()}
    part = by_column(labels, "style")
    lonely = tmp_path / "lonely.keys"
    lonely.write_text(sorted(labels)[0] + "\n")
    empty = tmp_path / "empty.keys"
    empty.write_text("")
    extra = [InstitutionSource("Lonely Gallery", str(collection.root), str(lonely), attach=False),
             InstitutionSource("Empty Archive", str(collection.root), str(empty), attach=False),
             InstitutionSource("Other Extractors", str(collection.root), "", ("effnet-lite0",), attach=False)]
    result, grid, _ = federate(collection, tmp_path, config(strategy="fedstyle"), part, extra)
    rejected = " | ".join(result.rejected.values())
    assert len(result.rejected) == 3
    assert "Lonely Gallery" in rejected and "has 1 labelled artwork" in rejected and "at least 3" in rejected
    assert "Empty Archive" in rejected and "has 0 labelled artwork" in rejected and "leave it out" in rejected
    assert "Other Extractors" in rejected and "--features" in rejected
    assert set(result.summary["institutions"]) == set(CLASSES)
    assert len(result.summary["rounds"]) == 2
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "head.pt").exists()


def test_a_client_rejects_a_model_of_another_shape(collection, tmp_path):
    result, grid, sources = federate(collection, tmp_path, config(strategy="fedavg", rounds=1))
    node = next(iter(grid.contexts))
    train = next(m for m in grid.down if m.metadata.message_type == "train" and m.metadata.dst_node_id == node)
    content = RecordDict({"arrays": train.content["arrays"], "config": train.content["config"]})
    content["config"]["head-fingerprint"] = "not-this-one"
    reply = grid.app(message_from_proto(message_to_proto(Message(content, dst_node_id=node, message_type="train"))),
                     grid.contexts[node])
    assert reply.has_error() and grid.names[node] in reply.error.reason and "restart" in reply.error.reason
    arrays = head_arrays(result.head, fedstyle=False)
    arrays.pop("classifier.bias")
    from artlens.federated.client_app import to_record

    bad = RecordDict({"arrays": to_record(arrays), "config": train.content["config"]})
    bad["config"]["head-fingerprint"] = ""
    reply = grid.app(message_from_proto(message_to_proto(Message(bad, dst_node_id=node, message_type="train"))),
                     grid.contexts[node])
    assert reply.has_error() and "does not fit this head" in reply.error.reason


@pytest.mark.parametrize("strategy", ["fedprox", "fedadam"])
def test_other_strategies_run_through_the_same_path(collection, tmp_path, strategy):
    result, grid, _ = federate(collection, tmp_path, config(strategy=strategy, rounds=1))
    assert len(result.summary["rounds"]) == 1 and result.summary["rounds"][0]["bytes_up"] > 0
    trains = [m for m in grid.down if m.metadata.message_type == "train"]
    assert ("proximal-mu" in trains[0].content["config"]) == (strategy == "fedprox")


def test_each_institution_saves_the_final_head_into_its_collection(tmp_path):
    from artlens.models import load_head

    coll = make_feature_collection(tmp_path / "own", CLASSES, per_class=20, extractors=FEATURES, seed=3)
    try:
        result, grid, _ = federate(coll, tmp_path, config(strategy="fedstyle", rounds=1), attach=True)
        assert result.summary["institutions_saved"] == 3
        saved = load_head(coll.head_file())
        assert saved.id == result.head.id and saved.info["federated"]["strategy"] == "fedstyle"
        assert (coll.root / "index" / "learned").exists()
    finally:
        coll.close()


@pytest.mark.parametrize("strategy", ["fedavg", "fedstyle"])
def test_secagg_gives_the_plain_aggregate_and_hides_each_update(collection, tmp_path, strategy):
    plain, _, _ = federate(collection, tmp_path, config(strategy=strategy, rounds=1), run="plain")
    masked, grid, _ = federate(collection, tmp_path, config(strategy=strategy, rounds=1, secagg=True), run="secagg")
    a, b = plain.head.state_dict(), masked.head.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].numel()) < 1e-3  # up to SecAgg+ quantisation
    trains = [r for _, r in grid.sent if r.metadata.message_type == "train"]
    assert trains and not any(len(r.content.array_records[k]) for r in trains for k in r.content.array_records)
    assert masked.summary["rounds"][0]["bytes_up"] > 0


def test_secagg_with_differential_privacy(collection, tmp_path):
    result, _, _ = federate(collection, tmp_path, config(strategy="fedstyle", rounds=2, secagg=True, dp_epsilon=8.0))
    assert 0 < result.summary["epsilon"] <= 8.0 and len(result.summary["rounds"]) == 2


class StaleHeadGrid(LocalGrid):
    """The last institution keeps the head settings of another run (another head shape) after set-up,
    as a client left over from an earlier federation would."""

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        replies = super().send_and_receive(messages, timeout=timeout)
        if messages and messages[0].metadata.message_type == "query.setup":
            from flwr.app import ConfigRecord

            from artlens.federated.client_app import STATE_SETTINGS
            from artlens.federated.participant import Settings

            stale = max(self.contexts)
            state = self.contexts[stale].state
            settings = Settings.from_record(state.config_records[STATE_SETTINGS])
            other = json.loads(settings.head_json)
            other["dim"] = other["dim"] * 2
            state[STATE_SETTINGS] = ConfigRecord(Settings(json.dumps(other, sort_keys=True),
                                                          settings.federation).to_record())
        return replies


def test_a_client_on_another_head_config_is_named_and_the_others_finish_the_rounds(collection, tmp_path):
    result, grid, sources = federate(collection, tmp_path, config(strategy="fedavg"), grid_class=StaleHeadGrid)
    stale = grid.names[max(grid.contexts)]
    errors = [r.error.reason for name, r in grid.sent if name == stale and r.has_error()]
    assert errors and all(stale in e and "restart this client" in e for e in errors)
    assert not any(r.has_error() for name, r in grid.sent if name != stale)
    trained = [name for name, r in grid.sent if r.metadata.message_type == "train" and not r.has_error()]
    assert sorted(trained) == sorted([s.name for s in sources if s.name != stale] * 2)  # both rounds, without it
    assert [r["round"] for r in result.summary["rounds"]] == [1, 2] and result.summary["map"] is not None


def test_the_out_head_applies_to_another_institutions_collection(collection, tmp_path, capsys):
    from artlens.cli import main
    from artlens.models import load_head

    out = tmp_path / "shared" / "federated.pt"
    result, _, _ = federate(collection, tmp_path, config(strategy="fedstyle", rounds=1), out=out)
    head = load_head(out)
    assert head.id == result.head.id and head.info["federated"]["strategy"] == "fedstyle"
    other = make_feature_collection(tmp_path / "elsewhere", CLASSES, per_class=6, extractors=FEATURES, seed=9)
    try:
        assert "learned" not in other.config.aspects and not other.head_file().exists()
    finally:
        other.close()
    code = main(["eval", "retrieval", "--collection", str(tmp_path / "elsewhere"), "--label", "style",
                 "--aspect", "learned", "--head", str(out), "--json"])
    scores = json.loads(capsys.readouterr().out)
    assert code == 0 and scores["n_queries"] == 6 * len(CLASSES) and 0 < scores["map"] <= 1
    code = main(["search", "--collection", str(tmp_path / "elsewhere"), "--id", "1", "--aspect", "learned",
                 "--head", str(out), "-k", "3", "--json"])
    hits = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and len(hits) == 3 and all("learned" in h["aspects"] for h in hits)


def test_too_few_institutions_left_stops_the_run_listing_every_refusal(collection, tmp_path):
    from artlens.errors import ArtlensError
    from artlens.federated.partition import Partition

    md5s = collection.catalog.md5s()
    labels = {md5s[i]: v for i, v in collection.catalog.column("style").items()}
    alone = Partition({"Only Museum": sorted(k for k, v in labels.items() if v == "cubism")})
    empty = tmp_path / "empty.keys"
    empty.write_text("")
    extra = [InstitutionSource("Empty Archive", str(collection.root), str(empty), attach=False),
             InstitutionSource("Nowhere Museum", str(tmp_path / "missing"), attach=False)]
    with pytest.raises(ArtlensError) as info:
        federate(collection, tmp_path, config(strategy="fedavg", min_clients=2), alone, extra)
    assert "only 1 institution(s) can take part" in info.value.message
    assert "Empty Archive" in info.value.message and "Nowhere Museum" in info.value.message
    assert "--min-clients" in info.value.hint
