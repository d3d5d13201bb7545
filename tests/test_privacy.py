"""Privacy: the membership-inference attacks (they must be able to fail: a memorising head is caught,
a head that never saw the data is not), DP-SGD's clipping and accounting, and `artlens eval privacy`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from feature_collections import make_feature_collection

from artlens.errors import ArtlensError
from artlens.models import HeadShape, load_head
from artlens.privacy import (
    AuditConfig,
    audit_head,
    audit_profiles,
    lira_scores,
    membership_roc,
)
from artlens.train.config import TrainConfig
from artlens.train.loop import train_head
from artlens.train.privacy import (
    DP_RECIPE,
    DPPlan,
    PrivateStepper,
    epsilon_spent,
    private_training,
)
from artlens.train.run import (
    build_head,
    labelled_features,
    split_features,
    train_collection_head,
)

SPLITS = {0: "train", 1: "train", 2: "val", 3: "test", 4: "test"}  # 40 % members, 40 % non-members, 20 % val
# a wide, unregularised head trained long on few noisy artworks: it memorises its training split
MEMORISE = TrainConfig(loss="ce", epochs=60, patience=1000, weight_decay=0.0, batch_size=32, lr=3e-3,
                       head=HeadShape(hidden=(128,), dim=32, dropout=0.0))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Four classes whose artworks are mostly noise (only memorising fits the training split)."""
    coll = make_feature_collection(tmp_path_factory.mktemp("noisy") / "c", per_class=30, extractors=("colour-hist",),
                                   noise=6.0, extra={"split": lambda i, c: SPLITS[i % 5],
                                                     "artist": lambda i, c: f"{c}-{i % 3}"})
    yield coll
    coll.close()


@pytest.fixture(scope="module")
def memorised(noisy):
    return train_collection_head(noisy, "style", ("colour-hist",), MEMORISE).head


def test_roc_auc_and_low_fpr_rates():
    rng = np.random.default_rng(0)
    same = membership_roc(rng.normal(size=4000), rng.normal(size=4000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["tpr@1%fpr"] < 0.03
    apart = membership_roc(np.arange(10, 20), np.arange(10))
    assert apart["auc"] == 1.0 and apart["tpr@0.1%fpr"] == 1.0
    ties = membership_roc(np.zeros(5), np.zeros(5))
    assert ties["auc"] == 0.5 and ties["fpr"][0] == 0.0 and ties["tpr"][-1] == 1.0


def test_lira_separates_what_the_shadows_say_is_separable():
    rng = np.random.default_rng(1)
    n, s = 400, 16
    member = rng.random(n) < 0.5
    shadow_in = rng.random((s, n)) < 0.5
    difficulty = rng.normal(0, 3, n)  # examples differ far more from each other than in from out
    shadow = difficulty + 1.0 * shadow_in + rng.normal(0, 0.3, (s, n))
    target = difficulty + 1.0 * member + rng.normal(0, 0.3, n)
    lira = membership_roc(*(lambda x: (x[member], x[~member]))(lira_scores(target, shadow, shadow_in)))
    threshold = membership_roc(target[member], target[~member])
    assert lira["auc"] > 0.9 > threshold["auc"]  # calibration per example is what LiRA adds


def test_the_audit_catches_a_memorising_head(noisy, memorised):
    audit = audit_head(noisy, memorised, AuditConfig(shadows=8))
    assert audit["members"] == 48 and audit["nonmembers"] == 48
    assert audit["attacks"]["threshold"]["auc"] > 0.85
    assert audit["attacks"]["lira"]["auc"] > 0.75  # shadows of half the size memorise less surely than the head
    assert audit["privacy"] is None and audit["utility"]["n"] == 48


def test_the_audit_does_not_accuse_a_head_that_never_saw_the_artworks(noisy):
    """The same recipe trained on the validation artworks only: members and non-members are both
    strangers to it, so no attack may tell them apart."""
    specs = [s for s in build_head_specs(noisy)]
    data, classes = labelled_features(noisy, specs, ["style"])
    parts = split_features(noisy, data, "style", MEMORISE)
    head = build_head(specs, "style", classes[0], MEMORISE)
    head.fit_inputs(parts["val"].inputs, parts["val"].present)
    train_head(head, parts["val"], parts["val"], MEMORISE)
    head.info = {"config": MEMORISE.as_dict()}
    audit = audit_head(noisy, head, AuditConfig(shadows=8))
    for attack in ("threshold", "lira"):
        assert abs(audit["attacks"][attack]["auc"] - 0.5) < 0.12, attack


def build_head_specs(collection):
    from artlens.train.run import resolve_inputs

    return resolve_inputs(collection, ("colour-hist",), MEMORISE)[0]


def test_dp_sgd_reports_the_accountants_epsilon_for_known_settings():
    from opacus.accountants import RDPAccountant

    # MNIST in Abadi et al. / Opacus's example: q = 256/60000, sigma from the target, 60 epochs
    steps = 60 * 60000 // 256
    plan = DPPlan.calibrate(3.0, 1e-5, 1.0, 256 / 60000, steps)
    accountant = RDPAccountant()
    for _ in range(3):
        accountant.history = [(plan.noise_multiplier, 256 / 60000, steps)]
    assert plan.record(steps)["epsilon"] == pytest.approx(accountant.get_epsilon(delta=1e-5), rel=1e-9)
    assert 2.95 < plan.record(steps)["epsilon"] <= 3.0  # calibrated to the target, not beyond it
    assert 1.0 < plan.noise_multiplier < 1.2  # the published setting: sigma 1.1 gives epsilon about 3
    assert plan.record(steps // 2)["epsilon"] < plan.record(steps)["epsilon"]
    assert epsilon_spent([], 1e-5) == 0.0


def test_ghost_clipping_equals_clipping_each_artworks_gradient(noisy):
    config = TrainConfig(loss="ce", head=HeadShape(hidden=(32,), dim=16, dropout=0.0))
    specs = build_head_specs(noisy)
    data, classes = labelled_features(noisy, specs, ["style"])
    head = build_head(specs, "style", classes[0], config)
    head.fit_inputs(data.inputs, data.present)
    from artlens.train.objectives import Prepared, create_objective

    prepared, objective = Prepared(head, data), create_objective(config)
    rows = np.arange(12)
    clip = 0.05
    expected = [torch.zeros_like(p) for p in head.parameters()]
    for r in rows:  # one artwork at a time, the textbook way
        head.zero_grad()
        x, present = prepared.rows([r])
        objective.example_losses(head, x, present, torch.from_numpy(prepared.labels[[r], 0])).sum().backward()
        grads = [p.grad.clone() for p in head.parameters()]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        for e, g in zip(expected, grads):
            e += g * min(1.0, clip / (float(norm) + 1e-6))
    plan = DPPlan(1.0, 1e-5, clip, 0.1, 1, 0.0)  # no noise: the clipped mean itself
    optimizer = torch.optim.SGD(head.parameters(), lr=0.0)
    objective.config = dataclasses.replace(config, modality_dropout=0.0)
    stepper = PrivateStepper(head, objective, optimizer, plan, batch_size=len(rows))
    stepper.step(prepared, rows)
    for p, e in zip(head.parameters(), expected):
        torch.testing.assert_close(p.grad, e / len(rows), rtol=1e-4, atol=1e-7)


def test_record_level_dp_training_stores_epsilon_in_metrics_and_head_file(noisy, tmp_path):
    config = TrainConfig(loss="ce", epochs=3, dp_records=4.0, batch_size=16)
    run = train_collection_head(noisy, "style", ("colour-hist",), config)
    spent = run.history.privacy
    assert spent["level"] == "record" and 0 < spent["epsilon"] <= 4.0 and spent["delta"] == 1e-5
    steps = 3 * round(48 / 16)
    assert spent["steps"] == steps
    assert spent["epsilon"] == pytest.approx(epsilon_spent([(spent["noise_multiplier"], 16 / 48, steps)], 1e-5))
    assert [e["epsilon"] for e in run.history.epochs] == sorted(e["epsilon"] for e in run.history.epochs)
    assert run.summary()["privacy"]["epsilon"] == spent["epsilon"]
    run.head.save(tmp_path / "dp.pt")
    assert load_head(tmp_path / "dp.pt").info["privacy"]["epsilon"] == spent["epsilon"]


def test_losses_that_mix_artworks_are_refused_under_dp(noisy):
    with pytest.raises(ArtlensError, match="supcon loss cannot be trained with record-level DP"):
        train_collection_head(noisy, "style", ("colour-hist",), TrainConfig(dp_records=8.0))


def test_profile_audit_sees_exact_prototypes_better_than_noisy_ones(noisy, memorised):
    from artlens.artists.portfolio import artist_labels, learned_space
    from artlens.artists.profiles import ProfileConfig, build_profiles

    space = learned_space(noisy, memorised, artist_labels(noisy, "artist"))
    results = {}
    for eps in (None, 0.5):
        published = build_profiles(space.vectors, space.artists, memorised.id, ProfileConfig(epsilon=eps))
        results[eps] = audit_profiles(noisy, memorised, published, "artist", AuditConfig(shadows=8))
    exact, noisy_dp = results[None], results[0.5]
    assert exact["members"] > 0 and exact["nonmembers"] > 0 and exact["artists"] == 12
    assert exact["attacks"]["lira"]["auc"] > 0.6 and exact["privacy"] is None
    assert abs(noisy_dp["attacks"]["lira"]["auc"] - 0.5) < 0.15 and noisy_dp["privacy"]["epsilon"] == 0.5


def test_cli_eval_privacy_json_and_report(noisy, memorised, tmp_path, capsys):
    from artlens.cli import main

    memorised.save(tmp_path / "head.pt")
    code = main(["eval", "privacy", "-c", str(noisy.root), "--head", str(tmp_path / "head.pt"), "--shadows", "1",
                 "--shadow-epochs", "5", "-o", str(tmp_path / "report"), "-q", "--json"])
    assert code == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["kind"] == "head" and set(audit["attacks"]) == {"threshold", "lira"}
    assert {"auc", "tpr@1%fpr", "tpr@0.1%fpr", "fpr", "tpr"} <= set(audit["attacks"]["lira"])
    assert "protects" in audit and audit["utility"]["map"] is not None
    for name in ("report.md", "report.json", "roc.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert main(["eval", "privacy", "-c", str(noisy.root), "--head", str(tmp_path / "head.pt"),
                 "--profiles", str(tmp_path / "nothing.json"), "--artist-column", "artist"]) == 2
    assert "no profile file" in capsys.readouterr().err


def _simulate_three_styles(tmp_path, config):
    """A federated simulation of ``config``: three institutions, one style each, colour features."""
    from artlens.federated.config import ServerSettings
    from artlens.federated.simulation import simulate

    coll = make_feature_collection(tmp_path / "c", ("baroque", "cubism", "impressionism"), per_class=25,
                                   extractors=("colour-hist",))
    coll.close()
    return simulate(tmp_path / "c", ServerSettings(config, str(tmp_path / "run")), "style", attach=False, cpus=2)


@pytest.mark.slow
def test_federated_record_level_dp_spends_at_most_its_epsilon_per_artwork(tmp_path):
    pytest.importorskip("flwr")
    from artlens.federated.config import FederatedConfig
    from artlens.settings import with_changes

    config = with_changes(FederatedConfig(rounds=2, local_epochs=2, features=("colour-hist",)),
                          {"training__dp_records": 4.0})
    result = _simulate_three_styles(tmp_path, config)
    spent = result.head.info["privacy"]
    assert spent["level"] == "record" and 0 < spent["epsilon"] <= 4.0
    assert set(spent["per_institution"]) == {"baroque", "cubism", "impressionism"}
    assert result.summary["record_epsilon"] == spent["epsilon"] and result.summary["map"] is not None
    with pytest.raises(ArtlensError, match="fedprox"):
        config.replace(strategy="fedprox")


@pytest.mark.slow
def test_the_dp_federation_recipe_runs_through_flower_and_reports_its_epsilon(tmp_path):
    """`federate --dp-records`'s recipe end to end: FedAdam over one DP-SGD step per institution a round."""
    pytest.importorskip("flwr")
    from artlens.federated.config import FederatedConfig
    from artlens.federated.privacy import private_federation

    config = private_federation(FederatedConfig(features=("colour-hist",)), 4.0, {"rounds": 3})
    result = _simulate_three_styles(tmp_path, config)
    spent = result.head.info["privacy"]
    assert result.head.info["federated"]["strategy"] == "fedadam" and spent["steps"] == 3 == spent["planned_steps"]
    assert spent["sample_rate"] == 1.0 and 0.98 * 4.0 < spent["epsilon"] <= 4.0
    assert result.summary["record_epsilon"] == spent["epsilon"] and result.summary["map"] is not None
    assert [r.get("test_map") is not None for r in result.summary["rounds"]] == [True] * 3


def test_cli_train_dp_records_trains_ce_and_reports_epsilon(tmp_path, capsys):
    from artlens.cli import main

    coll = make_feature_collection(tmp_path / "c", per_class=15, extractors=("colour-hist",))
    coll.close()
    code = main(["train", "-c", str(tmp_path / "c"), "-l", "style", "--features", "colour-hist", "--epochs", "2",
                 "--dp-records", "2", "-q", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["loss"] == "ce" and 0 < summary["privacy"]["epsilon"] <= 2.0
    # the DP recipe under the flags given: full batches (one step an epoch), a linear 64-d head, 2 epochs
    assert summary["privacy"]["sample_rate"] == 1.0 and summary["privacy"]["planned_steps"] == 2
    head = load_head(tmp_path / "c" / "heads" / "learned.pt")
    assert head.config.hidden == () and head.config.dim == DP_RECIPE["head__dim"]
    assert head.info["privacy"]["epsilon"] == summary["privacy"]["epsilon"]
    metrics = json.loads((tmp_path / "c" / "heads" / "learned.metrics.json").read_text())
    assert "privacy" in json.dumps(metrics)


def test_the_dp_recipe_is_the_default_of_dp_records_and_flags_apply_over_it():
    config = private_training(TrainConfig(), 4.0)
    assert config.dp_records == 4.0 and config.loss == "ce" and config.head.hidden == ()
    assert config.batch_size == DP_RECIPE["batch_size"] and config.lr == DP_RECIPE["lr"]
    pytest.importorskip("typer")
    from artlens.cli.federate_cmd import server_settings
    from artlens.federated.privacy import DP_FEDERATION

    federation = server_settings({"dp_records": 8.0, "lr": 0.01}).federation
    assert federation.training.dp_records == 8.0 and federation.local_epochs == DP_FEDERATION["local_epochs"] == 1
    assert federation.training.lr == 0.01 and federation.training.head.dim == DP_RECIPE["head__dim"]
    # DP-FedAdam: plain local SGD steps, the server's Adam over the mean of the noisy updates
    assert federation.strategy == "fedadam" and federation.training.optimizer == "sgd"
    assert federation.rounds == DP_FEDERATION["rounds"] and federation.server_tau == DP_FEDERATION["server_tau"]
    assert server_settings({"dp_records": 8.0}).federation.training.lr == DP_FEDERATION["training__lr"]
    assert server_settings({"dp_records": 8.0, "strategy": "fedstyle"}).federation.strategy == "fedstyle"
    plain = server_settings({"dp_records": None}).federation
    assert not plain.dp_records and plain.training.head.hidden == HeadShape().hidden


def test_the_federated_recipe_spends_the_accountants_epsilon_per_institution():
    """Each institution's DP-SGD under the recipe: one full-batch step a round for every round, so its
    epsilon is Opacus's for (sigma, q = 1, rounds steps), within the target and tight to it."""
    from opacus.accountants import RDPAccountant

    from artlens.federated.config import FederatedConfig
    from artlens.federated.local import record_plan
    from artlens.federated.privacy import private_federation

    for epsilon, n in ((8.0, 700), (1.0, 650)):
        config = private_federation(FederatedConfig(), epsilon)
        plan = record_plan(config, n)
        assert plan.sample_rate == 1.0 and plan.steps == config.rounds * config.local_epochs == config.rounds
        accountant = RDPAccountant()
        accountant.history = [(plan.noise_multiplier, 1.0, config.rounds)]
        spent = plan.record(config.rounds)["epsilon"]
        assert spent == pytest.approx(accountant.get_epsilon(delta=1e-5), rel=1e-9)
        assert 0.98 * epsilon < spent <= epsilon


def test_sgd_is_a_training_option_and_an_unknown_optimizer_is_refused():
    from artlens.train.loop import make_optimizer

    head = torch.nn.Linear(4, 2)
    assert isinstance(make_optimizer(head, TrainConfig(optimizer="sgd")), torch.optim.SGD)
    assert isinstance(make_optimizer(head, TrainConfig()), torch.optim.Adam)
    with pytest.raises(ArtlensError, match="unknown optimizer"):
        make_optimizer(head, TrainConfig(optimizer="lion"))


def test_a_private_sgd_step_moves_by_lr_times_the_noisy_mean_clipped_gradient(noisy):
    """The federated recipe's local step: plain SGD on (sum of clipped gradients + N(0, (sigma C)^2)) / n.
    Without noise it moves by lr times the mean clipped gradient (norm at most lr C); the noise moves
    it by lr sigma C / n per weight."""
    from artlens.train.loop import private_stepper
    from artlens.train.objectives import Prepared

    config = TrainConfig(loss="ce", optimizer="sgd", lr=0.5, weight_decay=0.0, modality_dropout=0.0, dp_records=8.0,
                         dp_clip=0.1, head=HeadShape(hidden=(), dim=8, dropout=0.0))
    specs = build_head_specs(noisy)
    data, classes = labelled_features(noisy, specs, ["style"])
    rows = np.arange(len(data))
    moved = {}
    for sigma in (0.0, 2.0):
        head = build_head(specs, "style", classes[0], config)
        head.fit_inputs(data.inputs, data.present)
        before = [p.detach().clone() for p in head.parameters()]
        stepper = private_stepper(head, data, config, DPPlan(8.0, 1e-5, config.dp_clip, 1.0, 1, sigma), seed=3)
        stepper.step(Prepared(head, data), rows)
        stepper.close()
        moved[sigma] = torch.cat([(p.detach() - b).flatten() for p, b in zip(head.parameters(), before)])
    assert 0 < float(moved[0.0].norm()) <= config.lr * config.dp_clip + 1e-6
    noise = moved[2.0] - moved[0.0]
    expected = config.lr * 2.0 * config.dp_clip / len(rows) * np.sqrt(noise.numel())
    assert 0.8 * expected < float(noise.norm()) < 1.2 * expected
