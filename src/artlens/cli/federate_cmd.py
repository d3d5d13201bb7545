"""`artlens federate`: train a head across institutions without their images, features or labels
leaving them (Flower). ``simulate`` runs every institution on this machine; ``server`` and
``client`` run a real federation as separate processes.

Flags map onto :class:`~artlens.federated.coordinator.ServerSettings` (and the federation's
:class:`~artlens.federated.config.FederatedConfig` inside it), which hold every default; a flag not
given leaves it. Flower is imported only when a command runs, so the rest of artlens works without
the extra.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from artlens.cli import app, collection_option, default_collection, device_option
from artlens.errors import ArtlensError
from artlens.federated.config import Endpoint, ServerSettings
from artlens.progress import Reporter
from artlens.settings import with_changes

console = Console(stderr=True)
federate_app = typer.Typer(help="Federated training across institutions (Flower): simulate, server, client.",
                           no_args_is_help=True)
app.add_typer(federate_app, name="federate")


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# parameter -> (setting it changes, flag, help without the default); the help shows the setting's default
FLAGS: dict[str, tuple[str, str, str]] = {
    "strategy": ("federation__strategy", "--strategy", "fedavg, fedprox, fedadam or fedstyle"),
    "rounds": ("federation__rounds", "--rounds", "Federated rounds"),
    "local_epochs": ("federation__local_epochs", "--local-epochs", "Epochs each institution trains per round"),
    "label": ("federation__label", "--label", "Label column (the classes)"),
    "features": ("federation__features", "--features", "Aspects or extractor names the head reads"),
    "lr": ("federation__training__lr", "--lr", "learning rate of the institutions' optimizer (Adam; plain SGD in the --dp-records recipe)"),
    "batch_size": ("federation__training__batch_size", "--batch-size", "Batch size of the institutions"),
    "proximal_mu": ("federation__proximal_mu", "--proximal-mu", "fedprox: weight of the proximal term"),
    "server_lr": ("federation__server_lr", "--server-lr", "fedadam: server learning rate"),
    "dp_epsilon": ("federation__dp_epsilon", "--dp-epsilon",
                   "Differential privacy per institution at this epsilon (0: off)"),
    "dp_delta": ("federation__dp_delta", "--dp-delta", "Differential privacy delta"),
    "dp_clip": ("federation__dp_clip", "--dp-clip", "L2 bound of one institution's update per round (DP)"),
    "dp_records": ("federation__training__dp_records", "--dp-records",
                   "Record-level DP-SGD inside every institution at this epsilon per artwork for the whole run, "
                   "with the DP recipe (full local batches, 2 local epochs, a linear 64-d head; docs/privacy.md) "
                   "under the other flags (0: off; fedstyle, fedavg, fedadam)"),
    "secagg": ("federation__secagg", "--secagg/--no-secagg",
               "Secure aggregation (SecAgg+): the server only sees the sum of updates"),
    "min_clients": ("federation__min_clients", "--min-clients", "Fewest institutions a round needs"),
    "round_timeout": ("federation__round_timeout", "--round-timeout",
                      "Seconds to wait for an institution before leaving it out of a round"),
    "seed": ("federation__training__seed", "--seed", "Seed of the split, initial weights and batches"),
    "virtual_styles": ("federation__virtual_styles", "--virtual-styles/--no-virtual-styles",
                       "fedstyle: contrast with virtual artworks drawn from the federation's style statistics"),
    "device": ("federation__training__device", "--device",
               "Device the simulated institutions train on: auto (a GPU when torch sees one, shared by the "
               "institutions), cpu, cuda or cuda:N"),
    "reduce": ("federation__training__head__reduce_dims", "--reduce",
               "PCA dimensions of inputs wider than the head's reduce_above (style Gram matrices)"),
    "monitor": ("monitor", "--monitor", "Institutions' validation score that picks the kept round "
                                        "(val-acc, val-loss, or last)"),
    "out": ("out", "--out", "Also write the head to FILE (apply it elsewhere with --head FILE)"),
}
SHORT = {"out": "-o", "label": "-l"}


def default_of(key: str, settings=ServerSettings()):
    """The default of a setting named as ``with_changes`` names it (``federation__training__lr``)."""
    for part in key.split("__"):
        settings = getattr(settings, part)
    return settings


def option(name: str):
    key, flag, text = FLAGS[name]
    default = default_of(key)
    shown = f" (default: {_shown(default)})" if default not in ("", None) else ""
    flags = [flag] + ([SHORT[name]] if name in SHORT else [])
    return typer.Option(None, *flags, help=f"{text}{shown}.", show_default=False)


def server_settings(values: dict, **fixed):
    """ServerSettings from the flags given (``values``: the command's parameters) and ``fixed`` settings."""
    changes = {FLAGS[name][0]: value for name, value in values.items() if name in FLAGS}
    features = changes.get("federation__features")
    if features is not None:
        changes["federation__features"] = tuple(f.strip() for f in features.split(",") if f.strip())
    if changes.get("out") is not None:
        changes["out"] = str(Path(changes["out"]).resolve())
    base = ServerSettings()
    if changes.get("federation__training__dp_records"):  # the DP recipe (docs/privacy.md), then the flags
        from artlens.federated.privacy import private_federation

        base = with_changes(base, {"federation": private_federation(base.federation,
                                                                    changes["federation__training__dp_records"])})
    return with_changes(base, {**changes, **fixed})


def require_flower() -> None:
    if importlib.util.find_spec("flwr") is None:
        raise ArtlensError("federated training needs Flower, which is not installed",
                           'install it with: pip install "artlens[federated]"')


def show(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2, default=str))
        return
    rows = summary.get("rounds", [])
    table = Table("round", "train loss", "val acc", "test mAP", "test acc", "MB up", "s",
                  title=f"{summary.get('strategy')}: {len(summary.get('institutions', {}))} institutions")
    shown = rows if len(rows) <= 12 else rows[:3] + rows[-9:]
    for r in shown:
        table.add_row(str(r["round"]), _f(r.get("train_loss")), _f(r.get("val_acc")), _f(r.get("test_map")),
                      _f(r.get("test_acc")), f"{r.get('bytes_up', 0) / 1e6:.1f}", f"{r.get('seconds', 0):.1f}")
    Console().print(table)
    for reason in (summary.get("rejected") or {}).values():
        console.print(f"  [yellow]left out:[/] {reason}")
    console.print(f"  {kept_line(summary)}; head {summary.get('head')}")


def kept_line(summary: dict) -> str:
    """What is known of the kept round: its held-out scores, or why there are none, and the privacy spent."""
    scores = [f"{name} {_f(summary.get(key))}" for name, key in (("test mAP", "map"), ("accuracy", "accuracy"))
              if summary.get(key) is not None]
    line = f"kept round {summary.get('kept_round')}: " + (", ".join(scores) if scores else
                                                          "not scored (no held-out collection was given: pass "
                                                          "--eval-collection PATH to score every round)")
    eps = summary.get("epsilon")
    line += f", epsilon {eps:.2f} (delta {summary.get('delta')})" if eps else ""
    record = summary.get("record_epsilon")
    return line + (f", record-level epsilon {record:.2f} (delta {summary.get('record_delta')})" if record else "")


def _f(value) -> str:
    return "" if value is None else f"{value:.4f}"


AS_JSON = typer.Option(False, "--json", help="Print the run summary as one JSON object (nothing else on stdout).")


@federate_app.command("simulate")
def simulate(
    collection: Path = collection_option(),
    partition: str = typer.Option("style", "--partition", help="A column (style: one institution per style), "
                                  "dirichlet:ALPHA, iid, or a CSV/JSON file mapping artworks to institutions."),
    institutions: int = typer.Option(0, "--institutions", help="Institutions for dirichlet/iid (0: 5)."),
    strategy: str = option("strategy"), rounds: int = option("rounds"), local_epochs: int = option("local_epochs"),
    label: str = option("label"), features: str = option("features"), lr: float = option("lr"),
    batch_size: int = option("batch_size"), proximal_mu: float = option("proximal_mu"),
    server_lr: float = option("server_lr"), dp_epsilon: float = option("dp_epsilon"),
    dp_delta: float = option("dp_delta"), dp_clip: float = option("dp_clip"), dp_records: float = option("dp_records"),
    secagg: bool = option("secagg"),
    min_clients: int = option("min_clients"), round_timeout: float = option("round_timeout"),
    seed: int = option("seed"), virtual_styles: bool = option("virtual_styles"), reduce: int = option("reduce"),
    monitor: str = option("monitor"), out: Path = option("out"), device: str = option("device"),
    run_dir: Path = typer.Option(None, "--run-dir", help="Where metrics.json, curves.png, head.pt and the "
                                                          "partition go (default: COLLECTION/federated/STRATEGY-TIME)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Make the head the collection's `learned` aspect."),
    cpus: int = typer.Option(None, "--cpus", help="Institutions trained at once (default: the CPU count)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the institutions' logs."),
    as_json: bool = AS_JSON,
):
    """Simulate a federation on this machine: partition the collection into institutions, hold its
    test split out, train with Flower's simulation engine and save the head into the collection."""
    require_flower()
    from artlens.devices import resolve_device
    from artlens.federated.simulation import simulate as run_simulation

    resolve_device(device)  # a GPU asked for and not there: an error before anything is written
    settings = server_settings(locals(), run_dir=str(run_dir) if run_dir else None)
    result = run_simulation(collection or default_collection(), settings, partition, institutions, save, cpus, verbose,
                            Reporter())
    show(result.summary, as_json)
    if not as_json:
        console.print(f"  metrics and curves in {result.run_dir}"
                      + ("; the collection's `learned` aspect is this head" if save else ""))


@federate_app.command("server")
def server(
    host: str = typer.Option(None, "--host", help="Address to listen on (0.0.0.0: every interface; default: "
                                                  f"{Endpoint.host})."),
    port: int = typer.Option(None, "--port", help=f"Port the institutions connect to (default: {Endpoint.port})."),
    institutions: int = typer.Option(None, "--institutions", help="Wait for this many institutions before starting "
                                                                  "(default: --min-clients)."),
    wait: float = typer.Option(None, "--wait", help="Seconds to wait for them, then start if --min-clients are "
                                                    f"there (default: {ServerSettings.wait_seconds:g})."),
    strategy: str = option("strategy"), rounds: int = option("rounds"), local_epochs: int = option("local_epochs"),
    label: str = option("label"), features: str = option("features"), lr: float = option("lr"),
    batch_size: int = option("batch_size"), proximal_mu: float = option("proximal_mu"),
    server_lr: float = option("server_lr"), dp_epsilon: float = option("dp_epsilon"),
    dp_delta: float = option("dp_delta"), dp_clip: float = option("dp_clip"), dp_records: float = option("dp_records"),
    secagg: bool = option("secagg"),
    min_clients: int = option("min_clients"), round_timeout: float = option("round_timeout"),
    seed: int = option("seed"), virtual_styles: bool = option("virtual_styles"), reduce: int = option("reduce"),
    monitor: str = option("monitor"), out: Path = option("out"),
    eval_collection: Path = typer.Option(None, "--eval-collection", help="A labelled collection the server holds: "
                                         "its test split scores every round."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Metrics, curves, head and logs (default: "
                                                         "./federated/STRATEGY-TIME)."),
    insecure: bool = typer.Option(False, "--insecure", help="No TLS (always allowed on a loopback --host)."),
    tls_ca: Path = typer.Option(None, "--tls-ca", help="CA certificate (TLS)."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="Server certificate (TLS)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="Server private key (TLS)."),
    as_json: bool = AS_JSON,
):
    """Run the federation's server: a Flower SuperLink on HOST:PORT and the artlens server app; the
    institutions join with `artlens federate client`."""
    require_flower()
    from artlens.federated import deploy

    settings = server_settings(locals(), run_dir=str(run_dir) if run_dir else None, institutions=institutions,
                               wait_seconds=wait,
                               eval_collection=str(eval_collection.resolve()) if eval_collection else None)
    endpoint = with_changes(Endpoint(), {"host": host, "port": port, "insecure": insecure,
                                                "tls_ca": str(tls_ca) if tls_ca else None,
                                                "tls_cert": str(tls_cert) if tls_cert else None,
                                                "tls_key": str(tls_key) if tls_key else None})
    show(deploy.serve(settings, endpoint, Reporter()), as_json)


@federate_app.command("client")
def client(
    collection: Path = collection_option("This institution's collection."),
    institution: str = typer.Option(..., "--institution", help="This institution's name, as the others see it."),
    server_address: str = typer.Option(..., "--server", help="The federation server, HOST:PORT."),
    partition: Path = typer.Option(None, "--partition", help="Train only on the artworks in this key file "
                                   "(one image MD5 per line)."),
    features: str = typer.Option("", "--features", help="Refuse runs on other inputs than these (default: any)."),
    insecure: bool = typer.Option(False, "--insecure", help="No TLS (always allowed to a loopback server)."),
    root_certificates: Path = typer.Option(None, "--root-certificates", help="CA certificate of the server (TLS)."),
    max_wait: float = typer.Option(None, "--max-wait", help="Give up after this many seconds without the server."),
    device: str = device_option("train this institution's local epochs on"),
    as_json: bool = typer.Option(False, "--json", help="Print {institution, server, finished} as JSON at the end."),
):
    """Join a federation as an institution: train on this collection when the server asks and send back
    only weights and aggregate statistics."""
    require_flower()
    from artlens.devices import device_name
    from artlens.federated import deploy

    device = device_name(device)  # this machine's device, before the SuperNode starts
    try:
        deploy.join(collection or default_collection(), institution, server_address, str(partition or ""), features,
                    insecure, str(root_certificates or ""), max_wait, Reporter(), device)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except deploy.Leave:
        raise typer.Exit(143) from None
    if as_json:
        print(json.dumps({"institution": institution, "server": server_address, "finished": True}))
