"""Twin-bottleneck hashing (TBH, Shen et al., CVPR 2020) in plain PyTorch, and TBH-sim.

Input features are L2-normalised, centred, projected on their top ``input_pca`` principal
directions (256 by default: keeps training fast on CPU) and scaled to unit mean norm. An encoder MLP
maps them to two bottlenecks: a binary one (``bits`` units, ``tanh`` relaxation, sign with a
straight-through gradient; in ``tbh`` the stochastic neuron of the paper, +1 with probability
``(1 + tanh) / 2`` during training) and a continuous one. The binary codes of the batch define an
adaptive similarity graph, ``A = 1 - Hamming / bits`` (TBH) or the sharper
``A = exp(-graph_gamma * Hamming / bits)``; one graph-convolution step
``sigmoid(D^-1/2 A D^-1/2 Z W)`` mixes the continuous codes through that graph, and a decoder
reconstructs the input from the result (MSE). The binary codes reach the reconstruction only
through the graph. Bit balance, bit decorrelation and quantisation regularisers replace the
adversarial regularisers of the paper. Adam with a one-cycle schedule; seeded and deterministic on
CPU; one thread by default (OpenMP barriers make 2 threads far slower on a busy 2-core machine).

``tbh-sim`` adds the similarity loss of the KOLAA paper: the MSE between the batch adjacency of the
input features (cosine similarity) and that of the relaxed codes (cosine of the ``tanh`` codes;
``sim_code="binary"`` uses the straight-through binary codes, i.e. exactly 1 - 2 * Hamming / bits).
Defaults of both heads were tuned on EfficientNet-Lite0 features of CIFAR-10 (see
benchmarks/hashing_quality.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from artlens.devices import cpu_threads
from artlens.vectors import l2_normalise

from .base import BaseHasher, register_hasher
from .linear import pca_basis


class _TBHNet(nn.Module):
    def __init__(
        self, d_in: int, bits: int, hidden: int, cont_dim: int, graph_gamma: float = 0.0, stochastic: bool = False
    ):
        super().__init__()
        self.bits = bits
        self.graph_gamma = graph_gamma
        self.stochastic = stochastic
        self.encoder = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU())
        self.to_binary = nn.Linear(hidden, bits)
        self.to_continuous = nn.Sequential(nn.Linear(hidden, cont_dim), nn.ReLU())
        self.graph_weight = nn.Linear(cont_dim, cont_dim)
        self.decoder = nn.Sequential(nn.Linear(cont_dim, hidden), nn.ReLU(), nn.Linear(hidden, d_in))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_binary(self.encoder(x))

    def forward(self, x: torch.Tensor):
        h = self.encoder(x)
        relaxed = torch.tanh(self.to_binary(h))
        # straight-through sign: forward +-1, backward through tanh; in training, optionally the
        # stochastic neuron of TBH (bit = +1 with probability (1 + tanh) / 2)
        if self.stochastic and self.training:
            threshold = torch.rand_like(relaxed) * 2.0 - 1.0
        else:
            threshold = torch.zeros_like(relaxed)
        hard = torch.where(relaxed >= threshold, 1.0, -1.0)
        binary = relaxed + (hard - relaxed).detach()
        # adaptive graph from the batch's codes: A_ij = 1 - Hamming(b_i, b_j) / bits in [0, 1],
        # or the sharper exp(-gamma * Hamming / bits)
        hamming_frac = 0.5 * (1.0 - binary @ binary.T / self.bits)
        if self.graph_gamma > 0:
            adjacency = torch.exp(-self.graph_gamma * hamming_frac)
        else:
            adjacency = 1.0 - hamming_frac
        inv_sqrt_deg = adjacency.sum(dim=1).clamp_min(1e-6).rsqrt()
        norm_adj = inv_sqrt_deg[:, None] * adjacency * inv_sqrt_deg[None, :]
        z = self.to_continuous(h)
        mixed = torch.sigmoid(norm_adj @ self.graph_weight(z))
        return self.decoder(mixed), relaxed, binary


class _OneCycleAdam:
    """Adam with the one-cycle schedule of ``torch.optim.lr_scheduler.OneCycleLR`` (cosine, 10 %
    warm-up, beta1 cycled 0.95 -> 0.85 -> 0.95), written out: ``torch.optim`` imports
    ``torch._dynamo`` on first use, which costs several seconds per process."""

    def __init__(self, params, max_lr: float, total_steps: int, weight_decay: float = 0.0, pct_start: float = 0.1):
        self.params = [p for p in params if p.requires_grad]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.max_lr, self.total, self.weight_decay = max_lr, max(total_steps, 2), weight_decay
        self.warm_end = max(float(pct_start * self.total) - 1.0, 1e-9)
        self.beta2, self.eps, self.t = 0.999, 1e-8, 0

    @staticmethod
    def _cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1.0)

    def _schedule(self, step: int) -> tuple[float, float]:
        lr0, lr_min = self.max_lr / 25.0, self.max_lr / 25.0 / 1e4
        if step <= self.warm_end:
            pct = step / self.warm_end
            return self._cos(lr0, self.max_lr, pct), self._cos(0.95, 0.85, pct)
        pct = (step - self.warm_end) / max(self.total - 1 - self.warm_end, 1e-9)
        return self._cos(self.max_lr, lr_min, pct), self._cos(0.85, 0.95, pct)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        lr, beta1 = self._schedule(self.t)
        self.t += 1
        bc1, bc2 = 1.0 - beta1**self.t, 1.0 - self.beta2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad if self.weight_decay == 0 else p.grad + self.weight_decay * p
            m.mul_(beta1).add_(g, alpha=1.0 - beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
            denom = (v.sqrt() / np.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / bc1)


def _cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return xn @ xn.T


@register_hasher
class TBHHasher(BaseHasher):
    """Twin-bottleneck auto-encoding hasher (unsupervised)."""

    name = "tbh"
    #: defaults of the arguments left as ``None``; tuned on EfficientNet-Lite0 CIFAR-10 features
    #: (benchmarks/hashing_quality.py)
    defaults: dict[str, Any] = {
        "epochs": 30,
        "sim_weight": 0.0,
        "balance_weight": 1.0,
        "decorrelation_weight": 1.0,
        "quantization_weight": 0.1,
        "graph_gamma": 20.0,
        "stochastic": True,
    }

    def __init__(
        self,
        bits: int,
        feature_id: str | None = None,
        hidden: int = 512,
        cont_dim: int = 256,
        input_pca: int | None = 256,
        epochs: int | None = None,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        l2_normalize: bool = True,
        center: bool = True,
        rec_weight: float = 1.0,
        sim_weight: float | None = None,
        balance_weight: float | None = None,
        decorrelation_weight: float | None = None,
        quantization_weight: float | None = None,
        graph_gamma: float | None = None,
        sim_code: str = "cosine",
        stochastic: bool | None = None,
        threads: int | None = 1,
    ):
        super().__init__(bits, feature_id)

        def pick(name, value):
            return self.defaults[name] if value is None else value

        epochs = pick("epochs", epochs)
        sim_weight = pick("sim_weight", sim_weight)
        balance_weight = pick("balance_weight", balance_weight)
        decorrelation_weight = pick("decorrelation_weight", decorrelation_weight)
        quantization_weight = pick("quantization_weight", quantization_weight)
        graph_gamma = pick("graph_gamma", graph_gamma)
        stochastic = pick("stochastic", stochastic)
        self.hidden = int(hidden)
        self.cont_dim = int(cont_dim)
        self.input_pca = None if input_pca in (None, 0) else int(input_pca)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.l2_normalize = bool(l2_normalize)
        self.center = bool(center)
        self.rec_weight = float(rec_weight)
        self.sim_weight = float(sim_weight)
        self.balance_weight = float(balance_weight)
        self.decorrelation_weight = float(decorrelation_weight)
        self.quantization_weight = float(quantization_weight)
        self.graph_gamma = float(graph_gamma)
        if sim_code not in ("cosine", "inner", "binary"):
            raise ValueError(f"sim_code must be 'cosine', 'inner' or 'binary', got {sim_code!r}")
        self.sim_code = sim_code
        self.stochastic = bool(stochastic)
        self.threads = threads
        self.net: _TBHNet | None = None
        self.history: list[dict[str, float]] = []

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "cont_dim": self.cont_dim,
            "input_pca": self.input_pca,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "l2_normalize": self.l2_normalize,
            "center": self.center,
            "rec_weight": self.rec_weight,
            "sim_weight": self.sim_weight,
            "balance_weight": self.balance_weight,
            "decorrelation_weight": self.decorrelation_weight,
            "quantization_weight": self.quantization_weight,
            "graph_gamma": self.graph_gamma,
            "sim_code": self.sim_code,
            "stochastic": self.stochastic,
        }

    # -- preprocessing ---------------------------------------------------------------------
    def _l2(self, x: np.ndarray) -> np.ndarray:
        if self.l2_normalize:
            x = l2_normalise(x)
        return x

    def _preprocess(self, x: np.ndarray) -> np.ndarray:
        x = (self._l2(x) - self.mean) @ self.basis if self.basis is not None else self._l2(x) - self.mean
        return np.ascontiguousarray(x * self.scale, dtype=np.float32)

    # -- training --------------------------------------------------------------------------
    def _losses(self, x: torch.Tensor, net: _TBHNet) -> dict[str, torch.Tensor]:
        recon, relaxed, binary = net(x)
        out = {"rec": (recon - x).pow(2).sum(dim=1).mean()}
        out["balance"] = relaxed.mean(dim=0).pow(2).mean()
        corr = relaxed.T @ relaxed / len(x)
        eye = torch.eye(self.bits, dtype=x.dtype)
        out["decorrelation"] = (corr - eye).pow(2).mean()
        out["quantization"] = (relaxed - binary.detach()).pow(2).mean()
        if self.sim_weight > 0:
            if self.sim_code == "cosine":
                code_sim = _cosine_matrix(relaxed)
            elif self.sim_code == "inner":  # equals 1 - 2 * Hamming / bits once the codes are binary
                code_sim = relaxed @ relaxed.T / self.bits
            else:  # "binary": exactly 1 - 2 * Hamming / bits, straight-through gradients
                code_sim = binary @ binary.T / self.bits
            out["sim"] = (code_sim - _cosine_matrix(x)).pow(2).mean()
        return out

    def _fit(self, x, seed, reporter):
        x = x.astype(np.float64)
        xl = self._l2(x)
        self.mean = xl.mean(axis=0).astype(np.float32) if self.center else np.zeros(x.shape[1], np.float32)
        self.basis = None
        if self.input_pca is not None and self.input_pca < x.shape[1]:
            _, basis = pca_basis(xl, self.input_pca)
            self.basis = basis.astype(np.float32)
        self.scale = np.float32(1.0)
        pre = self._preprocess(x)
        rms = float(np.sqrt(np.mean(np.sum(pre.astype(np.float64) ** 2, axis=1))))
        self.scale = np.float32(1.0 / max(rms, 1e-12))
        data = torch.from_numpy(pre * self.scale)
        weights = {
            "rec": self.rec_weight,
            "sim": self.sim_weight,
            "balance": self.balance_weight,
            "decorrelation": self.decorrelation_weight,
            "quantization": self.quantization_weight,
        }
        with cpu_threads(self.threads):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                gen = torch.Generator().manual_seed(seed)
                net = _TBHNet(data.shape[1], self.bits, self.hidden, self.cont_dim, self.graph_gamma, self.stochastic)
                n = len(data)
                bs = min(self.batch_size, n)
                steps = max(1, n // bs)  # drop the ragged last batch: the graph needs a full batch
                opt = _OneCycleAdam(net.parameters(), self.lr, self.epochs * steps, self.weight_decay)
                bar = reporter.bar(total=self.epochs, desc=f"{self.name} {self.bits} bits", unit="epoch")
                self.history = []
                net.train()
                for epoch in range(self.epochs):
                    perm = torch.randperm(n, generator=gen)
                    sums: dict[str, float] = {}
                    for s in range(steps):
                        batch = data[perm[s * bs : (s + 1) * bs]]
                        parts = self._losses(batch, net)
                        loss = sum(weights[k] * v for k, v in parts.items())
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        for k, v in parts.items():
                            sums[k] = sums.get(k, 0.0) + float(v.detach())
                        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                    self.history.append({k: v / steps for k, v in sums.items()} | {"epoch": epoch + 1})
                    bar.set_postfix(loss=f"{self.history[-1]['loss']:.4f}")
                    bar.update(1)
                bar.close()
        net.eval()
        self.net = net

    def _project(self, x):
        xp = torch.from_numpy(self._preprocess(x.astype(np.float64)))
        out = []
        with torch.no_grad():
            for s in range(0, len(xp), 8192):
                out.append(self.net.logits(xp[s : s + 8192]).numpy())
        return np.concatenate(out)

    # -- persistence -----------------------------------------------------------------------
    def _arrays(self):
        arrays = {"mean": self.mean, "scale": np.asarray(self.scale, dtype=np.float32)}
        if self.basis is not None:
            arrays["basis"] = self.basis
        for k, v in self.net.state_dict().items():
            arrays[f"net.{k}"] = v.detach().cpu().numpy()
        return arrays

    def _set_arrays(self, arrays):
        self.mean = arrays["mean"].astype(np.float32)
        self.scale = np.float32(arrays["scale"])
        self.basis = arrays["basis"].astype(np.float32) if "basis" in arrays else None
        d_net = self.basis.shape[1] if self.basis is not None else self.input_dim
        net = _TBHNet(d_net, self.bits, self.hidden, self.cont_dim, self.graph_gamma, self.stochastic)
        state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")}
        net.load_state_dict(state)
        net.eval()
        self.net = net


@register_hasher
class TBHSimHasher(TBHHasher):
    """TBH plus the KOLAA similarity loss: MSE(cos(features), cos(tanh codes)) over the batch."""

    name = "tbh-sim"
    defaults = {
        "epochs": 30,
        "sim_weight": 1.0,
        "balance_weight": 0.1,
        "decorrelation_weight": 0.1,
        "quantization_weight": 0.3,
        "graph_gamma": 0.0,
        "stochastic": False,
    }
