"""Run the app with uvicorn on a socket bound up front, so a taken port is a clear error and the URL
is announced only once the collection is loaded and the server is listening."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable

import uvicorn
from uvicorn.supervisors import Multiprocess

from artlens.api.app import create_app
from artlens.collection import Collection
from artlens.errors import ArtlensError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ArtlensError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                           "choose another port with --port, or stop what is using this one") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int, tls: bool = False) -> str:
    """The URL of the address bound (``0.0.0.0``: every interface, as bound)."""
    shown = host or "0.0.0.0"
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_warning(host: str, tokens: bool, tls: bool) -> str | None:
    """What is missing to face a network from ``host``, or None (loopback, or tokens and TLS)."""
    if is_loopback(host) or (tokens and tls):
        return None
    missing = " and ".join(m for m, ok in (("without tokens", tokens), ("without TLS", tls)) if not ok)
    return (f"serving on {host or '0.0.0.0'}, which other machines can reach, {missing}: "
            + ("anyone who reaches it can use it" if not tokens else "tokens travel in clear text")
            + ". Give --tokens FILE (artlens token) and --ssl-certfile/--ssl-keyfile, or bind 127.0.0.1 behind a "
              "TLS proxy (docs/serving.md).")


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``on_ready(url)`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str], None] | None = None):
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_ready is not None:
            sock = (sockets or [None])[0]
            host, port = (sock.getsockname()[:2] if sock is not None else (self.config.host, self.config.port))
            self.on_ready(url_of(host, port, tls=self.config.is_ssl))


def limit_threads(threads: int) -> None:
    """CPU threads one request may use in PyTorch and FAISS. A server runs requests side by side, so
    one each serves best: with more, OpenMP threads spin-wait for each other whenever the cores are
    shared (measured on 2 busy cores: an upload's features 90 ms with 1 thread, 700+ ms with 2; a
    10k-item index search 0.5 ms against 70 ms)."""
    import faiss
    import torch

    torch.set_num_threads(max(1, threads))
    faiss.omp_set_num_threads(max(1, threads))


def serve_app(app, host: str = "127.0.0.1", port: int = 8000, on_ready: Callable[[str], None] | None = None,
              log_level: str = "warning", threads: int | None = 1, ssl_certfile: str | None = None,
              ssl_keyfile: str | None = None) -> None:
    """Serve ``app`` until interrupted (Ctrl+C, SIGTERM): both are a normal stop. ``threads``: see
    :func:`limit_threads` (None leaves the libraries' defaults); ``ssl_certfile`` and ``ssl_keyfile``
    (PEM) serve HTTPS."""
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise ArtlensError("HTTPS needs both a certificate and its key", "give --ssl-certfile and --ssl-keyfile together")
    for path in (ssl_certfile, ssl_keyfile):
        if path and not os.path.isfile(path):
            raise ArtlensError(f"no such file: {path}", "give the PEM files of the server's certificate and key")
    sock = bind(host, port)
    if threads is not None:
        limit_threads(threads)
    # Keep-alive longer than uvicorn's 5 s: a busy page's connection must not be closed as a request arrives.
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=3, timeout_keep_alive=30,
                            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    try:
        AnnouncingServer(config, on_ready).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, after shutting down
        pass
    finally:
        sock.close()


class BackgroundServer:
    """Serve ``app`` on a free port in a thread, for tests and benchmarks; ``with`` stops it.

        with BackgroundServer(app) as url:
            httpx.get(url + "api/health")
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 120.0):
        import threading

        self._sock = bind(host, port)
        self.url = url_of(*self._sock.getsockname()[:2])
        self._ready = threading.Event()
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
        self.server = AnnouncingServer(config, on_ready=lambda _url: self._ready.set())
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self.start_timeout = start_timeout

    def __enter__(self) -> str:
        self._thread.start()
        while not self._ready.wait(0.1):
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped while starting (see the log above)")
            self.start_timeout -= 0.1
            if self.start_timeout <= 0:
                self.server.should_exit = True
                raise TimeoutError("the server did not start in time")
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


class CollectionApp:
    """The app factory each worker of ``serve --workers N`` calls in its own process: opens the
    collection at ``location`` (a folder or a ``postgresql://`` URL) and builds the app over it.
    Picklable (plain settings), so the worker processes are spawned with it."""

    def __init__(self, settings, location: str, threads: int | None = 1):
        self.settings = settings
        self.location = str(location)
        self.threads = threads

    def __call__(self):
        if self.threads is not None:
            limit_threads(self.threads)
        return create_app(self.settings, collection=Collection.open(self.location), warm_up=True)


class _AnnouncingWorkers(Multiprocess):
    """uvicorn's worker supervisor (restarts a worker that dies), announcing the URL once the
    workers are started."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, on_ready: Callable[[str], None] | None):
        super().__init__(config, target=uvicorn.Server(config).run, sockets=[sock])
        self.on_ready = on_ready
        self.url = url_of(*sock.getsockname()[:2], tls=config.is_ssl)

    def init_processes(self) -> None:
        super().init_processes()
        if self.on_ready is not None:
            self.on_ready(self.url)


def serve_workers(factory: CollectionApp, workers: int, host: str = "127.0.0.1", port: int = 8000,
                  on_ready: Callable[[str], None] | None = None, log_level: str = "warning",
                  ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> None:
    """Serve the app ``factory`` builds from ``workers`` processes sharing one listening socket
    (each with its own collection readers: a PostgreSQL collection serves every worker from the
    database; a folder collection's workers read its committed generation as one process does).
    Stops, with every worker, on Ctrl+C or SIGTERM."""
    if workers < 1:
        raise ArtlensError(f"--workers {workers}: at least one worker", "e.g. --workers 2 (one per core)")
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise ArtlensError("HTTPS needs both a certificate and its key", "give --ssl-certfile and --ssl-keyfile together")
    sock = bind(host, port)
    sock.listen(2048)  # connections wait in the backlog while the workers load the collection
    # A worker loading its models on busy cores may not answer the supervisor's ping for a while:
    # a minute before it counts as hung (uvicorn's 5 s would restart it forever).
    config = uvicorn.Config(factory, factory=True, workers=workers, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=3, timeout_keep_alive=30, ssl_certfile=ssl_certfile,
                            ssl_keyfile=ssl_keyfile, timeout_worker_healthcheck=60)
    try:
        _AnnouncingWorkers(config, sock, on_ready).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
