"""`artlens federate`: train a head across institutions without their images, features or labels
leaving them (Flower). ``simulate`` runs every institution on this machine; ``server`` and
``client`` run a real federation as separate processes.

Flower is imported only when a command runs, so the rest of artlens works without the extra.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from artlens.cli import app, collection_option, open_collection
from artlens.errors import ArtlensError

console = Console(stderr=True)
federate_app = typer.Typer(help="Federated training across institutions (Flower): simulate, server, client.",
                           no_args_is_help=True)
app.add_typer(federate_app, name="federate")

STRATEGY = typer.Option("fedstyle", "--strategy", "-s", help="fedavg, fedprox, fedadam or fedstyle.")
ROUNDS = typer.Option(50, "--rounds", "-r", help="Federated rounds.")
LOCAL_EPOCHS = typer.Option(10, "--local-epochs", "-e", help="Epochs each institution trains per round.")
LABEL = typer.Option("style", "--label", "-l", help="Label column (the classes).")
FEATURES = typer.Option("content,style", "--features", help="Aspects or extractor names the head reads.")
LR = typer.Option(1e-3, "--lr", help="Adam learning rate of the institutions.")
BATCH = typer.Option(32, "--batch-size", help="Batch size of the institutions.")
MU = typer.Option(0.01, "--proximal-mu", help="fedprox: weight of the proximal term.")
SERVER_LR = typer.Option(0.01, "--server-lr", help="fedadam: server learning rate.")
EPSILON = typer.Option(0.0, "--dp-epsilon", help="Differential privacy per institution at this epsilon (0: off).")
DELTA = typer.Option(1e-5, "--dp-delta", help="Differential privacy delta.")
CLIP = typer.Option(1.0, "--dp-clip", help="L2 bound of one institution's update per round (DP).")
SECAGG = typer.Option(False, "--secagg", help="Secure aggregation (SecAgg+): the server only sees the sum of updates.")
MIN_CLIENTS = typer.Option(2, "--min-clients", help="Fewest institutions a round needs.")
TIMEOUT = typer.Option(600.0, "--round-timeout", help="Seconds to wait for an institution before leaving it out of a round.")
SEED = typer.Option(0, "--seed", help="Seed of the split, initial weights and batches.")
VIRTUAL = typer.Option(True, "--virtual-styles/--no-virtual-styles",
                       help="fedstyle: contrast with virtual artworks drawn from the federation's style statistics.")
REDUCE = typer.Option(256, "--reduce", help="PCA dimensions of inputs wider than 2048 (style Gram matrices).")
MONITOR = typer.Option("val-acc", "--monitor", help="Institutions' validation score that picks the kept round "
                                                     "(val-acc, val-loss, or last).")
OUT = typer.Option(None, "--out", "-o", help="Also write the head to FILE (apply it elsewhere with --head FILE).")
AS_JSON = typer.Option(False, "--json", help="Print the run summary as JSON.")


def require_flower() -> None:
    if importlib.util.find_spec("flwr") is None:
        raise ArtlensError("federated training needs Flower, which is not installed",
                           'install it with: pip install "artlens[federated]"')


def federation_config(strategy, rounds, local_epochs, label, features, lr, batch_size, proximal_mu, server_lr,
                      dp_epsilon, dp_delta, dp_clip, secagg, min_clients, round_timeout, seed, virtual_styles, reduce):
    from artlens.federated.config import FederatedConfig

    return FederatedConfig(strategy=strategy, rounds=rounds, local_epochs=local_epochs, label=label,
                           features=tuple(f.strip() for f in features.split(",") if f.strip()), lr=lr,
                           batch_size=batch_size, proximal_mu=proximal_mu, server_lr=server_lr, dp_epsilon=dp_epsilon,
                           dp_delta=dp_delta, dp_clip=dp_clip, secagg=secagg, min_clients=min_clients,
                           round_timeout=round_timeout, seed=seed, virtual_styles=virtual_styles, reduce_dims=reduce)


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
    return line + (f", epsilon {eps:.2f} (delta {summary.get('delta')})" if eps else "")


def _f(value) -> str:
    return "" if value is None else f"{value:.4f}"


@federate_app.command("simulate")
def simulate(
    collection: Path = collection_option(),
    partition: str = typer.Option("style", "--partition", "-p", help="A column (style: one institution per style), "
                                  "dirichlet:ALPHA, iid, or a CSV/JSON file mapping artworks to institutions."),
    institutions: int = typer.Option(0, "--institutions", "-n", help="Institutions for dirichlet/iid (default 5)."),
    strategy: str = STRATEGY, rounds: int = ROUNDS, local_epochs: int = LOCAL_EPOCHS, label: str = LABEL,
    features: str = FEATURES, lr: float = LR, batch_size: int = BATCH, proximal_mu: float = MU,
    server_lr: float = SERVER_LR, dp_epsilon: float = EPSILON, dp_delta: float = DELTA, dp_clip: float = CLIP,
    secagg: bool = SECAGG, min_clients: int = MIN_CLIENTS, round_timeout: float = TIMEOUT, seed: int = SEED,
    virtual_styles: bool = VIRTUAL, reduce: int = REDUCE, monitor: str = MONITOR,
    run_dir: Path = typer.Option(None, "--run-dir", help="Where metrics.json, curves.png, head.pt and the "
                                                          "partition go (default: COLLECTION/federated/STRATEGY-TIME)."),
    out: Path = OUT,
    save: bool = typer.Option(True, "--save/--no-save", help="Make the head the collection's `learned` aspect."),
    cpus: int = typer.Option(None, "--cpus", help="Institutions trained at once (default: the CPU count)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the institutions' logs."),
    as_json: bool = AS_JSON,
):
    """Simulate a federation on this machine: partition the collection into institutions, hold its
    test split out, train with Flower's simulation engine and save the head into the collection."""
    require_flower()
    from artlens.federated.simulation import simulate as run_simulation

    config = federation_config(strategy, rounds, local_epochs, label, features, lr, batch_size, proximal_mu, server_lr,
                               dp_epsilon, dp_delta, dp_clip, secagg, min_clients, round_timeout, seed, virtual_styles,
                               reduce)
    coll = open_collection(collection)
    root = coll.root
    coll.close()
    run_dir = run_dir or root / "federated" / f"{strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_simulation(root, config, partition, institutions, run_dir, str(out or ""), save, cpus, monitor, verbose)
    show(result.summary, as_json)
    if not as_json:
        console.print(f"  metrics and curves in {run_dir}" + ("; the collection's `learned` aspect is this head" if save else ""))


def loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@federate_app.command("server")
def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(9093, "--port", help="Port the institutions connect to."),
    institutions: int = typer.Option(2, "--institutions", "-n", help="Wait for this many institutions before starting."),
    wait: float = typer.Option(600.0, "--wait", help="Seconds to wait for them (then start if --min-clients are there)."),
    strategy: str = STRATEGY, rounds: int = ROUNDS, local_epochs: int = LOCAL_EPOCHS, label: str = LABEL,
    features: str = FEATURES, lr: float = LR, batch_size: int = BATCH, proximal_mu: float = MU,
    server_lr: float = SERVER_LR, dp_epsilon: float = EPSILON, dp_delta: float = DELTA, dp_clip: float = CLIP,
    secagg: bool = SECAGG, min_clients: int = MIN_CLIENTS, round_timeout: float = TIMEOUT, seed: int = SEED,
    virtual_styles: bool = VIRTUAL, reduce: int = REDUCE, monitor: str = MONITOR,
    eval_collection: Path = typer.Option(None, "--eval-collection", help="A labelled collection the server holds: "
                                         "its test split scores every round."),
    run_dir: Path = typer.Option(Path("federated-run"), "--run-dir", help="Metrics, curves, head and logs."),
    out: Path = OUT,
    insecure: bool = typer.Option(False, "--insecure", help="No TLS (always allowed on a loopback --host)."),
    tls_ca: Path = typer.Option(None, "--tls-ca", help="CA certificate (TLS)."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="Server certificate (TLS)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="Server private key (TLS)."),
):
    """Run the federation's server: a Flower SuperLink on HOST:PORT and the artlens server app; the
    institutions join with `artlens federate client`."""
    require_flower()
    from artlens.federated import deploy
    from artlens.federated.coordinator import ServerSettings
    from artlens.federated.server_app import ERROR_FILE, read_error

    config = federation_config(strategy, rounds, local_epochs, label, features, lr, batch_size, proximal_mu, server_lr,
                               dp_epsilon, dp_delta, dp_clip, secagg, min_clients, round_timeout, seed, virtual_styles,
                               reduce)
    certificates = (str(tls_ca), str(tls_cert), str(tls_key)) if tls_ca and tls_cert and tls_key else None
    plain = insecure or (certificates is None and loopback(host))
    run_dir = run_dir.resolve()
    settings = ServerSettings(config, str(run_dir), str(out.resolve()) if out else "",
                              str(eval_collection.resolve()) if eval_collection else "", institutions=institutions,
                              wait_seconds=wait, monitor=monitor)
    address = f"{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if deploy.reachable(address, 1.0):
        raise ArtlensError(f"port {port} on {host} is already in use", "choose another --port")
    (run_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier run's error is not this run's
    started = time.time()
    app_dir = deploy.write_flower_app(run_dir / "app", settings)
    home = deploy.write_flower_home(run_dir / "flwr-home", address, plain, str(tls_ca or ""))
    env = deploy.flower_env(home)
    launched = deploy.Launched()
    try:
        launched.start("superlink", deploy.superlink_args(host, port, plain, certificates), run_dir / "logs", env)
        deploy.wait_until_reachable(address, 60, "the Flower SuperLink")
        console.print(f"[bold green]artlens federation server[/] on {address}: waiting for {institutions} institution(s)\n"
                      f"  they join with: artlens federate client --collection PATH --institution NAME --server "
                      f"{address}\n  logs in {run_dir / 'logs'}")
        run = launched.start("run", deploy.run_args(app_dir), run_dir / "logs", env)
        code = run.wait()
        logs = f"{launched.logs['run']} and {launched.logs['superlink']}"
        failure = read_error(run_dir)
        if failure is not None:
            raise ArtlensError(failure.message, (f"{failure.hint}; " if failure.hint else "") + f"logs: {logs}")
        metrics = run_dir / "metrics.json"
        if code != 0 or not metrics.exists() or metrics.stat().st_mtime < started - 1:
            why = f"`flwr run` exited with code {code}" if code != 0 else "the server app wrote no metrics.json"
            raise ArtlensError(f"the federated run failed: {why}", f"see {logs}")
        show(json.loads(metrics.read_text()), False)
    except KeyboardInterrupt:
        console.print("stopping the server")
        raise
    finally:
        launched.stop()


@federate_app.command("client")
def client(
    collection: Path = collection_option("This institution's collection."),
    institution: str = typer.Option(..., "--institution", "-i", help="This institution's name, as the others see it."),
    server_address: str = typer.Option(..., "--server", help="The federation server, HOST:PORT."),
    partition: Path = typer.Option(None, "--partition", help="Train only on the artworks in this key file "
                                   "(one image MD5 per line)."),
    features: str = typer.Option("", "--features", help="Refuse runs on other inputs than these (default: any)."),
    insecure: bool = typer.Option(False, "--insecure", help="No TLS (always allowed to a loopback server)."),
    root_certificates: Path = typer.Option(None, "--root-certificates", help="CA certificate of the server (TLS)."),
    max_wait: float = typer.Option(None, "--max-wait", help="Give up after this many seconds without the server."),
):
    """Join a federation as an institution: train on this collection when the server asks and send back
    only weights and aggregate statistics."""
    require_flower()
    from artlens.federated import deploy

    coll = open_collection(collection)
    root = coll.root
    coll.close()
    host, _ = deploy.split_address(server_address)
    plain = insecure or (root_certificates is None and loopback(host))
    if not plain and root_certificates is None:
        raise ArtlensError(f"institution {institution!r}: {server_address} is not on this machine and no TLS "
                           "certificate was given", "pass --root-certificates CA.crt, or --insecure on a trusted network")
    if not deploy.reachable(server_address, 5.0):
        raise ArtlensError(f"institution {institution!r} cannot reach the federation server at {server_address}",
                           "start it with `artlens federate server` there, or check --server, the port and the "
                           "firewall; the other institutions are not affected")
    launched = deploy.Launched()
    args = deploy.supernode_args(server_address, str(root), institution, deploy.free_port(),
                                 str(partition.resolve()) if partition else "", features, plain,
                                 str(root_certificates or ""), max_wait)
    console.print(f"[bold green]{institution}[/] joined the federation at {server_address} with {root}; Ctrl+C leaves")
    seen = SupernodeWatch()
    previous = signal.signal(signal.SIGTERM, _leave)  # SIGTERM stops the SuperNode and its children too
    try:
        supernode = launched.start_foreground("supernode", args, deploy.flower_env(), seen)
        # the SuperNode does not exit once it gives up reconnecting: watch for that as well as for its exit
        while supernode.poll() is None and not seen.gave_up.wait(0.5):
            pass
        code = supernode.poll()
    except (KeyboardInterrupt, Leave) as exc:
        console.print(f"{institution} leaves the federation")
        launched.stop(grace=5.0)
        raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else 143) from None
    finally:
        launched.stop(grace=5.0)  # the SuperNode and what it left behind (flower-superexec, flwr-clientapp)
        signal.signal(signal.SIGTERM, previous)
    if seen.got_result:
        console.print(f"{institution}: the federation finished (the server sent its final head) and the server "
                      "is gone; the client ends")
        return
    why = (f"lost the server at {server_address} and gave up reconnecting" if seen.gave_up.is_set()
           else f"stopped (exit code {code})")
    raise ArtlensError(f"institution {institution!r}: the Flower SuperNode {why} before the federation finished",
                       "check that the server is running and reachable, then start the client again"
                       + ("" if max_wait is None else " (a larger --max-wait rides out longer outages)"))


class SupernodeWatch:
    """Reads the SuperNode's log lines: did it receive the final head, did it give up reconnecting?"""

    def __init__(self):
        import threading

        self.gave_up = threading.Event()
        self.got_result = False

    def __call__(self, line: str) -> bool:
        """Whether to show the line: not what the SuperNode prints while it is stopped after giving up."""
        if self.gave_up.is_set():
            return False
        if "Receiving: query.result" in line:
            self.got_result = True
        if "Giving up reconnection" in line:
            self.gave_up.set()
        return True


class Leave(Exception):
    """SIGTERM reached the client."""


def _leave(signum, frame):
    raise Leave()
