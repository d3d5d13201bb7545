"""Record-level differential privacy of training (DP-SGD; Abadi et al. 2016), with Opacus.

Each step draws a Poisson sample of the training artworks (rate q = batch size / n), clips each
artwork's gradient to L2 norm C (the per-example loss must depend on that artwork alone and on
public values; the norms come from the head's linear layers without forming one gradient per
artwork, as Opacus's fast gradient clipping does), sums them, and Opacus's ``DPOptimizer`` adds
Gaussian noise of standard deviation sigma*C and averages by the expected batch size.
Opacus's RDP accountant composes the steps; ``DPPlan`` calibrates sigma so that the planned steps
stay within the target (epsilon, delta).

One artwork's influence on the weights is bounded: whatever any one record is (or whether it is
there at all), the distribution of the trained weights changes by at most a factor e^epsilon (plus
delta). What the guarantee covers is the training split; the input transforms (PCA and
standardisation) are fitted on the validation split instead, and early stopping reads the
validation split, so the validation artworks are not covered (``scope`` says so in every record).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from artlens.errors import ArtlensError
from artlens.settings import with_changes

SCOPE = ("record-level (epsilon, delta) of the training split's artworks (add or remove one); the input "
         "transforms are fitted on, and early stopping reads, the validation split, which is not covered")
PER_EXAMPLE_LOSSES = ("ce",)  # supcon and triplet mix several artworks in one loss term; proxy
# normalises its class weights, which the ghost norms of linear layers do not cover

# The recipe `--dp-records` trains with (``private_training``), as a DP practitioner would set it up
# and as benchmarks/privacy.py measured it against the recipe of non-private training (docs/privacy.md):
# - full batches (``batch_size`` above any collection: sample rate 1) and few, large steps: the
#   noise added to the summed gradient is the same whatever the batch, so averaging it over every
#   training artwork makes it smallest, and fewer steps need less noise each;
# - a high learning rate for those few steps, and a clip of 1 (the clipped gradients stay aligned);
# - few trainable weights: a linear map (no hidden layer, no dropout) of the pretrained inputs, each
#   reduced by PCA to 256 dimensions, to a 64-d embedding: DP-SGD's noise grows with the weights
#   while the pretrained features, which cost no privacy, already hold most of the signal.
DP_RECIPE: dict = {"loss": "ce", "batch_size": 1_000_000, "epochs": 40, "lr": 0.02, "patience": 10, "dp_clip": 1.0,
                   "head__hidden": (), "head__dim": 64, "head__dropout": 0.0, "head__reduce_above": 512}


@dataclass(frozen=True)
class DPPlan:
    """The noise of a DP-SGD run: ``steps`` Poisson-sampled steps at ``sample_rate`` with noise
    multiplier ``noise_multiplier`` (plus any other releases of the same records, ``extra``:
    (noise multiplier, sample rate, count) each, e.g. a federation's per-round statistics)."""

    epsilon: float  # the target
    delta: float
    clip: float
    sample_rate: float
    steps: int
    noise_multiplier: float
    extra: tuple[tuple[float, float, int], ...] = ()

    @classmethod
    def calibrate(cls, epsilon: float, delta: float, clip: float, sample_rate: float, steps: int,
                  extra: tuple[tuple[float, float, int], ...] = ()) -> "DPPlan":
        """The smallest noise multiplier (to 0.5 %) whose epsilon after ``steps`` (and ``extra``) stays
        within ``epsilon``, by bisection on Opacus's RDP accountant."""
        check_target(epsilon, delta, clip)
        sample_rate = min(max(float(sample_rate), 1e-9), 1.0)
        steps = max(1, int(steps))

        def spent(sigma: float) -> float:
            return epsilon_spent([(sigma, sample_rate, steps), *extra], delta)

        if extra and epsilon_spent(list(extra), delta) >= epsilon:
            raise ArtlensError(f"the other releases alone spend more than epsilon {epsilon:g}",
                               "raise --dp-records, or run fewer rounds")
        lo, hi = 1e-2, 1.0
        while spent(hi) > epsilon:
            lo, hi = hi, hi * 2
            if hi > 1e5:
                raise ArtlensError(f"no noise level reaches epsilon {epsilon:g} in {steps} steps",
                                   "raise --dp-records, or train fewer epochs")
        while hi - lo > 5e-3 * hi:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if spent(mid) > epsilon else (lo, mid)
        return cls(float(epsilon), float(delta), float(clip), sample_rate, steps, float(hi), tuple(extra))

    def record(self, steps_taken: int, extra_taken: tuple[tuple[float, float, int], ...] | None = None) -> dict:
        """What a run spent after ``steps_taken`` steps (and its other releases), for the metrics and
        the head file."""
        extra = self.extra if extra_taken is None else extra_taken
        history = [(self.noise_multiplier, self.sample_rate, steps_taken), *extra] if steps_taken else list(extra)
        return {"level": "record", "epsilon": epsilon_spent(history, self.delta), "delta": self.delta,
                "target_epsilon": self.epsilon, "noise_multiplier": self.noise_multiplier, "clip": self.clip,
                "sample_rate": self.sample_rate, "steps": int(steps_taken), "planned_steps": self.steps,
                "other_releases": [list(e) for e in extra], "accountant": "rdp (opacus)", "scope": SCOPE}


def private_training(config, epsilon: float, recipe: dict | None = None):
    """``config`` (a ``TrainConfig``) under record-level DP at ``epsilon`` with ``recipe`` (default:
    ``DP_RECIPE``, the recipe of `--dp-records`); the CLI then applies the flags given over it."""
    return with_changes(config, {**(DP_RECIPE if recipe is None else recipe), "dp_records": epsilon})


def check_target(epsilon: float, delta: float, clip: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ArtlensError(f"record-level DP needs a positive epsilon, got {epsilon}", "pass e.g. --dp-records 8")
    if not 0 < delta < 1:
        raise ArtlensError(f"DP delta must be between 0 and 1, got {delta}", "pass e.g. delta 1e-5")
    if not clip > 0:
        raise ArtlensError(f"the per-artwork gradient clip must be positive, got {clip}", "use e.g. 1.0")


def check_private_loss(loss: str) -> None:
    """Record-level DP bounds one artwork's gradient, which only bounds its influence when each loss
    term holds one artwork."""
    if loss not in PER_EXAMPLE_LOSSES:
        why = ("its class weights are normalised, which per-artwork clipping of linear layers does not cover"
               if loss == "proxy" else "one loss term mixes several artworks, so clipping one artwork's gradient "
               "does not bound its influence")
        raise ArtlensError(f"the {loss} loss cannot be trained with record-level DP ({why})",
                           f"train with --loss {' or --loss '.join(PER_EXAMPLE_LOSSES)}")


def epsilon_spent(history, delta: float) -> float:
    """Epsilon of the composition of ``history`` [(noise multiplier, sample rate, steps), ...] at
    ``delta``, by Opacus's RDP accountant."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in history if n > 0]
    if not accountant.history:
        return 0.0
    with warnings.catch_warnings():  # Opacus warns when the best order is at the edge of its list
        warnings.simplefilter("ignore", UserWarning)
        return float(accountant.get_epsilon(delta=delta))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, int(round(n / max(1, min(batch_size, n)))))


def poisson_batches(n: int, sample_rate: float, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``steps`` batches, each holding every row independently with probability ``sample_rate``
    (the sampling the accountant assumes; a batch may be empty)."""
    for _ in range(steps):
        yield np.flatnonzero(rng.random(n) < sample_rate)


class _LinearTaps:
    """Forward and backward hooks on a head's trainable linear layers: each layer's input rows and
    the gradient of the loss at its output rows, from which one artwork's gradient norm follows
    without forming it (for a linear layer, the gradient of row i is the outer product g_i a_i^T,
    of norm |g_i| |a_i|: the "ghost" norms of Opacus's fast gradient clipping; Li et al. 2022)."""

    def __init__(self, head: nn.Module):
        self.layers = [m for m in head.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad]
        covered = {id(p) for m in self.layers for p in m.parameters() if p.requires_grad}
        loose = [n for n, p in head.named_parameters() if p.requires_grad and id(p) not in covered]
        if loose:
            raise ArtlensError(f"record-level DP clips linear layers only; this head also trains {', '.join(loose)}",
                               "train with --loss ce (fedstyle and fedavg federate with it)")
        self.inputs: dict[int, torch.Tensor] = {}
        self.grads: dict[int, torch.Tensor] = {}
        self._handles = [m.register_forward_hook(self._forward) for m in self.layers]

    def _forward(self, module, inputs, output):
        if not (torch.is_grad_enabled() and output.requires_grad):
            return  # a no-grad pass (e.g. public keys), not part of the step's gradient
        if id(module) in self.inputs:
            raise ArtlensError("a linear layer ran twice in one DP-SGD step, so its rows are not one artwork each",
                               "compute shared keys without gradient (torch.no_grad) in the per-example loss")
        self.inputs[id(module)] = inputs[0].detach()
        output.register_hook(lambda g, key=id(module): self.grads.__setitem__(key, g.detach()))

    def clear(self) -> None:
        self.inputs.clear()
        self.grads.clear()

    def squared_norms(self, n: int) -> torch.Tensor:
        """(n,) squared L2 norm of each row's gradient over every tapped layer."""
        total = torch.zeros(n, dtype=torch.float64, device=self.layers[0].weight.device if self.layers else None)
        for m in self.layers:
            a, g = self.inputs.get(id(m)), self.grads.get(id(m))
            if a is None or g is None:
                continue
            g2 = (g.double() ** 2).sum(dim=1)
            total += g2 * (a.double() ** 2).sum(dim=1) + (g2 if m.bias is not None and m.bias.requires_grad else 0)
        return total

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


@dataclass
class PrivateStepper:
    """Runs DP-SGD steps on a head: each artwork's gradient clipped to ``plan.clip`` (by its ghost
    norm, then a second backward pass of the reweighted losses gives the clipped sum), Opacus's
    ``DPOptimizer`` adds the Gaussian noise and averages by the expected batch size, then the step."""

    head: nn.Module
    objective: object
    optimizer: torch.optim.Optimizer
    plan: DPPlan
    batch_size: int
    seed: int = 0
    steps: int = 0
    _dp: object = field(default=None, repr=False)

    def __post_init__(self):
        from opacus.optimizers import DPOptimizer

        if not hasattr(self.objective, "example_losses"):
            check_private_loss(self.objective.config.loss)
            raise ArtlensError("this objective has no per-artwork loss for record-level DP",
                               f"train with --loss {' or --loss '.join(PER_EXAMPLE_LOSSES)}")
        self._taps = _LinearTaps(self.head)
        # the noise is drawn where the weights are (on a GPU its stream differs from the CPU's)
        self.device = next((p.device for p in self.head.parameters()), torch.device("cpu"))
        self._dp = DPOptimizer(self.optimizer, noise_multiplier=self.plan.noise_multiplier,
                               max_grad_norm=self.plan.clip, expected_batch_size=max(1, self.batch_size),
                               generator=torch.Generator(self.device).manual_seed(self.seed))

    def step(self, data, rows: np.ndarray) -> tuple[float, int]:
        """One DP-SGD step on the Poisson batch ``rows`` of ``data`` (a ``Prepared``); returns the
        batch's summed loss and its correct predictions (-1: the objective does not classify)."""
        self.steps += 1
        params = [p for p in self.head.parameters() if p.requires_grad]
        self.optimizer.zero_grad(set_to_none=True)
        total, right = 0.0, -1
        summed = [torch.zeros_like(p) for p in params]
        if len(rows):
            x, present = data.rows(rows, self.device)
            present = self.objective.training_presence(present)
            target = torch.from_numpy(data.labels[rows, 0]).to(self.device)
            self._taps.clear()
            losses = self.objective.example_losses(self.head, x, present, target)
            grads = torch.autograd.grad(losses.sum(), params, retain_graph=True)  # fills the taps; discarded
            del grads
            norms = self._taps.squared_norms(len(rows)).sqrt()
            factors = (self.plan.clip / (norms + 1e-6)).clamp(max=1.0).to(losses.dtype)
            summed = list(torch.autograd.grad((losses * factors).sum(), params))
            total = float(losses.detach().sum())
            with torch.no_grad():
                right = self.objective.correct(self.head, x, present, target)
            self._taps.clear()
        for p, g in zip(params, summed):
            p.summed_grad = g.detach()
        # Opacus adds N(0, (sigma C)^2) to each clipped sum and divides by the expected batch size
        self._dp.add_noise()
        for p in params:
            p.grad /= max(1, self.batch_size)
            p.summed_grad = None
        self._dp.original_optimizer.step()
        return total, right

    def close(self) -> None:
        self._taps.close()
