"""Aggregation maths: FedAvg weighted by n_i, fedstyle's prototypes, federated input transforms and
style statistics equal to their pooled (central) counterparts, and the local objectives."""

import time

import numpy as np
import pytest
import torch

from artlens.federated.config import FederatedConfig
from artlens.federated.head import (
    PROTO_COUNT,
    PROTO_SUM,
    anchors,
    build_head,
    head_arrays,
    input_specs,
    prototype_statistics,
    shared_classes,
)
from artlens.federated.local import ProximalObjective, VirtualStyles, fedstyle_loss
from artlens.federated.transforms import (
    fit_transforms,
    local_statistics,
    local_style_statistics,
    style_statistics,
)
from artlens.models.inputs import FeatureSet
from artlens.settings import with_changes
from artlens.train.objectives import ClassifierObjective, Prepared

flwr = pytest.importorskip("flwr")


def reply(arrays: dict, metrics: dict):
    from flwr.app import Array, ArrayRecord, Message, Metadata, MetricRecord, RecordDict

    content = RecordDict({"arrays": ArrayRecord({k: Array(np.asarray(v)) for k, v in arrays.items()}),
                          "metrics": MetricRecord(metrics)})
    return Message(content, metadata=Metadata(1, "m", 1, 0, "x", "", time.time(), 60, "train"))


def test_fedavg_weights_institutions_by_sample_count():
    from artlens.federated.strategies import create_strategy

    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((3, 2)) for _ in range(3)]
    sizes = [10, 30, 60]
    replies = [reply({"w": w}, {"num-examples": n, "unit-weight": 1, "train-loss": float(i)})
               for i, (w, n) in enumerate(zip(weights, sizes))]
    arrays, metrics = create_strategy(FederatedConfig(strategy="fedavg"), 3).aggregate_train(1, replies)
    expected = sum(w * n for w, n in zip(weights, sizes)) / sum(sizes)
    np.testing.assert_allclose(arrays["w"].numpy(), expected, rtol=1e-6)
    assert metrics["train-loss"] == pytest.approx((0 * 10 + 1 * 30 + 2 * 60) / 100)
    # under differential privacy each institution counts once (the noise is calibrated to C/K)
    arrays, _ = create_strategy(FederatedConfig(strategy="fedavg", dp_epsilon=8), 3).aggregate_train(1, replies)
    np.testing.assert_allclose(arrays["w"].numpy(), sum(weights) / 3, rtol=1e-6)


def test_fedstyle_prototypes_average_to_the_global_style_means():
    from artlens.federated.strategies import create_strategy

    rng = np.random.default_rng(1)
    n_classes, dim = 3, 5
    emb = [rng.standard_normal((n, dim)) for n in (7, 12, 6)]
    codes = [np.array([0] * 7), np.array([1] * 6 + [0] * 2 + [2] * 4), np.array([2, 2, 1, 2, 2, 2])]
    replies = [reply(prototype_statistics(e, c, n_classes), {"num-examples": len(c), "unit-weight": 1})
               for e, c in zip(emb, codes)]
    arrays, _ = create_strategy(FederatedConfig(strategy="fedstyle"), 3).aggregate_train(1, replies)
    got, present = anchors({k: v.numpy() for k, v in arrays.items()})
    # classes an institution holds fewer than three times stay home (the lone class-1 artwork of the
    # third, the two class-0 artworks of the second); every other artwork counts
    shared = [shared_classes(c, n_classes) for c in codes]
    assert shared[2].tolist() == [True, True, False, True, True, True]
    assert shared[1].tolist() == [True] * 6 + [False] * 2 + [True] * 4
    pooled_emb = np.concatenate([e[s] for e, s in zip(emb, shared)])
    pooled_codes = np.concatenate([c[s] for c, s in zip(codes, shared)])
    for c in range(n_classes):
        mean = pooled_emb[pooled_codes == c].mean(axis=0)
        np.testing.assert_allclose(got[c], mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    assert present.all()
    counts = arrays[PROTO_COUNT].numpy() * sum(len(c) for c in codes)
    np.testing.assert_allclose(counts, np.bincount(pooled_codes, minlength=n_classes), rtol=1e-5)


def test_a_class_held_fewer_than_three_times_never_leaves_in_per_class_sums():
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((6, 4))
    codes = np.array([0, 0, 0, 1, 2, 2])  # one artwork of class 1, two of class 2 (solvable from sum + outer)
    stats = prototype_statistics(emb, codes, 3)
    for lonely in (1, 2):
        assert not stats[PROTO_SUM][lonely].any() and stats[PROTO_COUNT][lonely] == 0
    np.testing.assert_allclose(stats[PROTO_SUM][0], emb[:3].sum(axis=0) / 6, rtol=1e-6)
    head = make_head(classes=3)
    data = structured_set(12, 11, classes=3)
    data.labels[:, 0] = [0] * 6 + [1] + [2] * 5
    fit_transforms(head, lambda stage, arrays: [local_statistics(head, data, stage, arrays)])
    styles, counts = local_style_statistics(head, data)
    assert not styles["styles.sum"][1].any() and styles["styles.count"].tolist() == [6, 0, 5] and counts["n"] == 11
    with torch.no_grad():
        x = torch.cat(list(head.transform({k: torch.from_numpy(v) for k, v in data.inputs.items()}).values()), 1).numpy()
    np.testing.assert_allclose(styles["styles.outer"], x[np.r_[0:6, 7:12]].T.astype(np.float64) @ x[np.r_[0:6, 7:12]],
                               rtol=1e-4, atol=1e-3)


def structured_set(n: int, seed: int, classes: int = 4) -> FeatureSet:
    from artlens.features import create_extractor

    dims = [create_extractor(name).dim for name in ("colour-hist", "gram-block4")]
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, classes, n)
    inputs = {}
    for name, d in zip(("colour-hist", "gram-block4"), dims):
        basis = np.random.default_rng(42 + d).standard_normal((6, d))  # shared low-rank structure
        inputs[name] = np.abs(rng.standard_normal((n, 6)) @ basis * 3 + codes[:, None] + rng.standard_normal((n, d))
                              ).astype(np.float32)
    return FeatureSet(np.arange(n), [str(i) for i in range(n)], inputs, {}, codes[:, None])


def make_head(classes=4, reduce=6):
    config = with_changes(FederatedConfig(features=("colour-hist", "gram-block4")), {"training__head__reduce_dims": reduce})
    specs = input_specs(config.features, config.training.head)
    return build_head(config.train_config().head_config(specs, "style", [f"c{i}" for i in range(classes)]))


def test_federated_input_transforms_match_a_central_fit():
    parts = [structured_set(n, seed) for n, seed in ((40, 1), (25, 2), (60, 3))]
    head = make_head()
    fit_transforms(head, lambda stage, arrays: [local_statistics(head, p, stage, arrays) for p in parts], iterations=4)
    pooled = FeatureSet(np.arange(125), [str(i) for i in range(125)],
                        {k: np.concatenate([p.inputs[k] for p in parts]) for k in parts[0].inputs}, {},
                        np.concatenate([p.labels for p in parts]))
    central = make_head()
    central.fit_inputs(pooled.inputs)
    fed, ref = head.state_dict(), central.state_dict()
    np.testing.assert_allclose(fed["transforms.gram-block4.mean"], ref["transforms.gram-block4.mean"], atol=1e-6)
    np.testing.assert_allclose(fed["transforms.colour-hist.shift"], ref["transforms.colour-hist.shift"], atol=1e-5)
    np.testing.assert_allclose(fed["transforms.colour-hist.scale"], ref["transforms.colour-hist.scale"], rtol=1e-4)
    # the federated PCA spans the same top subspace as sklearn's on the pooled vectors
    x = pooled.inputs["gram-block4"] / np.linalg.norm(pooled.inputs["gram-block4"], axis=1, keepdims=True)
    xc = x - x.mean(axis=0)

    def captured(components):
        return float(np.linalg.norm(xc @ np.asarray(components).T) ** 2)

    assert captured(fed["transforms.gram-block4.components"]) >= 0.99 * captured(ref["transforms.gram-block4.components"])
    # standardised outputs: zero mean, unit spread over the federation's training vectors
    with torch.no_grad():
        y = head.transform({k: torch.from_numpy(v) for k, v in pooled.inputs.items()})["gram-block4"].numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-3)


def test_style_statistics_are_the_pooled_within_style_covariance():
    parts = [structured_set(n, seed) for n, seed in ((40, 4), (30, 5))]
    head = make_head(reduce=6)
    fit_transforms(head, lambda stage, arrays: [local_statistics(head, p, stage, arrays) for p in parts])
    styles = style_statistics(head, lambda stage, arrays: [local_style_statistics(head, p) for p in parts], ridge=0.0)
    with torch.no_grad():
        xs = [torch.cat([v for v in head.transform({k: torch.from_numpy(a) for k, a in p.inputs.items()}).values()], 1)
              for p in parts]
    shared = np.concatenate([shared_classes(p.labels[:, 0], 4) for p in parts])
    x = torch.cat(xs).double().numpy()[shared]
    codes = np.concatenate([p.labels[:, 0] for p in parts])[shared]
    means = np.stack([x[codes == c].mean(axis=0) for c in range(4)])
    residual = x - means[codes]
    np.testing.assert_allclose(styles["styles.mean"], means, atol=1e-4)
    factor = styles["styles.factor"].astype(np.float64)
    np.testing.assert_allclose(factor @ factor.T, residual.T @ residual / len(x), atol=1e-3)
    virtual = VirtualStyles(head, styles)
    vx, present, vcodes = virtual.sample(4000, torch.Generator().manual_seed(0))
    flat = torch.cat([vx["colour-hist"], vx["gram-block4"]], 1).numpy()
    assert set(vcodes.tolist()) == {0, 1, 2, 3}
    for c in range(4):
        np.testing.assert_allclose(flat[vcodes.numpy() == c].mean(axis=0), means[c], atol=0.35)


def test_proximal_term_adds_half_mu_squared_distance():
    head = make_head()
    data = structured_set(20, 7)
    prepared = Prepared(head, data)
    inner = ClassifierObjective(FederatedConfig(strategy="fedavg").train_config())
    prox = ProximalObjective(inner, head, mu=0.5)
    head.train()
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.01)
    torch.manual_seed(0)
    base, _ = inner.loss(head, prepared, np.arange(8))
    torch.manual_seed(0)  # the same dropout masks
    total, _ = prox.loss(head, prepared, np.arange(8))
    drift = sum(p.numel() for p in head.parameters()) * 0.01 ** 2
    head.eval()
    assert total.item() - base.item() == pytest.approx(0.25 * drift, rel=1e-3)


@torch.enable_grad()  # another test may have loaded a backbone, which turns gradients off process-wide
def test_fedstyle_loss_pulls_a_single_style_batch_to_its_prototype():
    torch.manual_seed(0)
    anchors_ = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    emb = torch.nn.functional.normalize(torch.randn(6, 8), dim=1).requires_grad_(True)
    target = torch.zeros(6, dtype=torch.long)
    loss, right = fedstyle_loss(emb, target, anchors_, torch.tensor([True, True, True]), 0.1, 1.0)
    loss.backward()
    step = torch.nn.functional.normalize(emb.detach() - 0.1 * emb.grad, dim=1)
    assert (step @ anchors_[0]).mean().item() > (emb.detach() @ anchors_[0]).mean().item()
    assert 0 <= right <= 6
    no_anchor, right = fedstyle_loss(emb.detach(), target, anchors_, torch.tensor([False] * 3), 0.1, 1.0)
    assert right == -1 and torch.isfinite(no_anchor)


def test_round_arrays_leave_the_classifier_to_the_prototypes_under_fedstyle():
    head = make_head()
    arrays = head_arrays(head, fedstyle=True)
    assert PROTO_SUM in arrays and not any(k.startswith("classifier") for k in arrays)
    assert "classifier.weight" in head_arrays(head, fedstyle=False)


def test_fedadam_steps_along_the_mean_update_and_sends_float32():
    from artlens.federated.strategies import Observed, create_strategy

    fedadam = create_strategy(FederatedConfig(strategy="fedadam", server_lr=0.1), 2)
    fedadam.current_arrays = {"w": np.zeros(3, dtype=np.float32)}
    seen = []
    strategy = Observed(fedadam, lambda r, arrays, metrics: seen.append(arrays), lambda r, m: None)
    replies = [reply({"w": np.array([1.0, -1.0, 0.0], np.float32)}, {"num-examples": 1, "unit-weight": 1}),
               reply({"w": np.array([3.0, -1.0, 0.0], np.float32)}, {"num-examples": 1, "unit-weight": 1})]
    arrays, _ = strategy.aggregate_train(1, replies)
    step = arrays["w"].numpy()
    assert step.dtype == np.float32 and seen[0]["w"].dtype == np.float32
    assert step[0] > 0 and step[1] < 0 and abs(step[2]) < 1e-6  # along the sign of the mean update (2, -1, 0)
