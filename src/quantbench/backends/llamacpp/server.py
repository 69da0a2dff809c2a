"""llama-server: how llama.cpp variants are served (the serving adapter of the llamacpp backend).

scripts/install_llamacpp.sh builds ``llama-server`` in the same CMake build as the bindings (same
llama.cpp source and safe flags) and installs it as ``<env>/bin/llama-server``. Per serving setting
a server is started on 127.0.0.1 with a free port (a port taken meanwhile means another port), the
variant's GGUF file, ``--parallel N`` slots that share one continuous batch, and otherwise as people
deploy it: the server's defaults unless the suite sets a value (server_settings.py): flash
attention ``auto``, threads = the physical cores (or ``measure.threads``), the prompt cache on, the
F16 KV cache. ``describe()`` records each value and where it came from.

With the prompt cache on, a repeated prompt would be a cache hit: LoadGen repeats the sample
library's indexes, so every performance query (and warm-up) is sent a fresh prompt from held-out
text instead, never one this server saw before (serving/prompt_pool.py); AccuracyOnly queries send
their sample's own prompt, which the served-token comparison needs. A suite may give every prompt
the same leading tokens (``serving.llama_server.shared_prefix_tokens``) to measure what the cache
saves then.

Queries are token-id prompts (no BOS added: the harness's ids carry it), greedy (``samplers:
[top_k], top_k: 1``), a fixed ``n_predict`` with ``ignore_eos``, and streamed: the first streamed
token is LoadGen's ``FirstTokenComplete``, the last completes the query with its token count. The
server's own ``timings`` are kept per query: prompt_ms and predicted_per_token_ms for the TTFT/TPOT
cross-check, and ``cache_n`` (prompt tokens taken from its cache) against ``prompt_n`` (evaluated),
summed per point as ``prompt_cache``.

A server that dies fails its cell with its last log lines and is reaped; Ctrl-C stops it (it runs
in its own session, and the parent's death sends it SIGTERM). A missing binary skips the cells
with the reason.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from quantbench.backends.llamacpp.server_settings import ServerSettings, resolve
from quantbench.errors import QuantbenchError
from quantbench.serving.prompt_pool import PromptPool
from quantbench.serving.sut import Query, ServedSystem
from quantbench.serving.workload import Prompts

BINARY_ENV = "QUANTBENCH_LLAMA_SERVER"
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
PORT_TRIES = 5
LOG_TAIL = 15
#: Requests held in the server's queue beyond its slots, per slot: one each, so a slot that frees
#: finds its next prompt already there instead of waiting for an HTTP request.
QUEUE_ALLOWANCE_PER_SLOT = 1
CTX_BLOCK = 256  # llama.cpp pads KV cells per sequence to 256: a slot's context is rounded the same way


class ServerDied(QuantbenchError):
    """llama-server exited (or stopped answering) while a cell used it."""


def find_binary() -> tuple[Path | None, str]:
    """The llama-server to run and where it was looked for (for the skip reason)."""
    env = os.environ.get(BINARY_ENV)
    if env:
        path = Path(env).expanduser()
        ok = path.is_file() and os.access(path, os.X_OK)
        return (path if ok else None), f"${BINARY_ENV}={env}" + ("" if ok else " (not an executable file)")
    beside = Path(sys.executable).parent / "llama-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside, str(beside)
    found = shutil.which("llama-server")
    return (Path(found) if found else None), f"{beside} and PATH"


def stream_threads(parallel: int) -> int:
    """Client threads streaming responses at once: the slots plus the queue allowance.

    A thread past that would only hold a request in the server's queue and wait on its socket; on a
    2-core machine the harness's threads compete with the server for the cores, so the client keeps
    the rest of the arrivals in its own queue (LoadGen's clock already runs for them: the wait
    counts in their latency the same) and sends each when a stream ends."""
    return parallel * (1 + QUEUE_ALLOWANCE_PER_SLOT)


def free_port() -> int:
    """A port nothing listens on now (the server may still lose it to another process: then it retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the harness dies (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class ServerProcess:
    """One llama-server process: started on a free port, health-checked, stopped and reaped."""

    def __init__(self, binary: Path, gguf: Path, *, parallel: int, settings: ServerSettings, ctx_per_slot: int,
                 log_path: Path):
        self.binary, self.gguf, self.parallel, self.settings = binary, gguf, parallel, settings
        self.threads = settings.threads.value
        self.ctx = parallel * ctx_per_slot
        self.log_path = log_path
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.tried_ports: list[int] = []

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "-m", str(self.gguf), "--host", HOST, "--port", str(port),
                "--parallel", str(self.parallel), "--cont-batching", "-c", str(self.ctx), "-ngl", "0",
                *self.settings.flags(), "--no-webui"]

    def start(self, *, pick_port=free_port, timeout_s: float = START_TIMEOUT_S) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(PORT_TRIES):
            port = pick_port()
            self.tried_ports.append(port)
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.command(port), stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True,
                                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            self.port = port
            try:
                self._wait_healthy(timeout_s)
                return
            except ServerDied:
                if "couldn't bind" in self._log_since(offset):
                    continue  # the port was taken meanwhile: another one
                raise
        raise ServerDied(f"llama-server could not bind a port on {HOST} after trying {self.tried_ports}")

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise ServerDied(f"llama-server exited with code {self.process.returncode} while starting; "
                                 f"its last log lines: {self.tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerDied(f"llama-server did not become healthy in {timeout_s:.0f} s; its last log lines: {self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = LOG_TAIL) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text[-lines:] if line.strip())

    def stop(self) -> None:
        """Terminate and reap (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def died(self) -> ServerDied:
        code = self.process.returncode if self.process else None
        return ServerDied(f"llama-server (port {self.port}) exited with code {code} during the run; its last log "
                          f"lines: {self.tail()}")


def server_version(binary: Path) -> str:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return " ".join((out.stdout + out.stderr).split())


class LlamaServerSystem(ServedSystem):
    """The SUT: LoadGen's queries as streamed ``/completion`` requests to one llama-server."""

    kind = "llama-server (continuous batching)"
    token_latencies = True

    def __init__(self, server: ServerProcess, prompts: Prompts, *, version: str, fresh: PromptPool):
        super().__init__(len(prompts))
        self.server, self.prompts, self.version = server, prompts, version
        self.cache_prompt = bool(server.settings.cache_prompt.value)
        self.fresh = fresh  # this server's own pool: no prompt it was sent is sent again
        self.streams = ThreadPoolExecutor(max_workers=stream_threads(server.parallel),
                                          thread_name_prefix="quantbench-llama-client")
        self.timings: dict[int, dict[str, Any]] = {}  # LoadGen's query id -> the server's own timings
        self.sample_prompts = False  # AccuracyOnly: each query sends its sample's own prompt
        self.sent = {"fresh": 0, "samples": 0, "repeated": 0}  # prompts sent in the current test
        self._prompt_lock = threading.Lock()
        self._conns: set[http.client.HTTPConnection] = set()

    def begin(self, spec) -> None:
        super().begin(spec)
        self.timings = {}
        self.sent = {"fresh": 0, "samples": 0, "repeated": 0}
        self.sample_prompts = bool(spec.accuracy)  # the served-token comparison needs the sample's prompt

    def direct(self, indexes: list[int], *, timeout_s: float = 600.0) -> float:
        self.sample_prompts = False  # a warm-up is served like a performance point: fresh prompts
        return super().direct(indexes, timeout_s=timeout_s)

    def prompt(self, q: Query) -> np.ndarray:
        """The prompt ``q`` sends: its sample's (AccuracyOnly), else the pool's next fresh one."""
        with self._prompt_lock:
            if self.sample_prompts:
                prompt = self.prompts.ids[q.index]
                self.sent["samples"] += 1
                self.sent["repeated"] += self.fresh.note(prompt)
                return prompt
            prompt = self.fresh.take()
            self.sent["fresh"] += 1
            return prompt

    def body(self, prompt: np.ndarray) -> bytes:
        return json.dumps({"prompt": [int(t) for t in prompt], "n_predict": self.prompts.new_tokens,
                           "stream": True, "samplers": ["top_k"], "top_k": 1, "ignore_eos": True,
                           "cache_prompt": self.cache_prompt, "return_tokens": True}).encode()

    def submit(self, queries: list[Query]) -> None:
        for q in queries:
            try:
                prompt = self.prompt(q)
            except QuantbenchError as exc:  # the pool ran out: the point fails with why (never a repeat)
                self.fail(exc)
                return
            self.streams.submit(self._stream, q, prompt)

    def _stream(self, q: Query, prompt: np.ndarray) -> None:
        tokens: list[int] = []
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=600)
        self._conns.add(conn)
        try:
            conn.request("POST", "/completion", body=self.body(prompt), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                raise QuantbenchError(f"llama-server answered {response.status}: {response.read(300)!r}")
            while not self.aborted:
                line = response.readline()
                if not line:
                    raise ConnectionError("the stream ended before the last token")
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                now = time.perf_counter()
                new = event.get("tokens") or []
                if new:
                    if not tokens:
                        self.first_token([q], now)
                    tokens.extend(int(t) for t in new)
                    q.token_times.extend([now] * len(new))
                if event.get("stop"):
                    self.timings[q.id] = dict(event.get("timings") or {})
                    self.complete([(q, np.asarray(tokens, dtype=np.int32))], now)
                    return
        except Exception as exc:  # noqa: BLE001 - a broken stream fails the point (the server is checked)
            if self.aborted:
                return
            # A dropped connection is often the server dying: give its exit a moment to show.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.process.wait(timeout=2)
            self.fail(self.server.died() if not self.server.alive() else
                      QuantbenchError(f"llama-server request failed: {type(exc).__name__}: {exc}"))
        finally:
            self._conns.discard(conn)
            conn.close()

    def server_pid(self) -> int | None:
        process = self.server.process
        return process.pid if process is not None and process.poll() is None else None

    def own_timings(self) -> dict[str, Any] | None:
        """llama-server's own view of the last test: prompt_ms (its TTFT, queue excluded) and
        predicted_per_token_ms (its TPOT: generation time / (tokens - 1)) as percentiles over the
        queries, what its prompt cache did (``prompt_cache``) and which prompts were sent (``prompts``)."""
        from quantbench.serving.timing import percentiles_ms

        values = list(self.timings.values())
        if not values:
            return None
        return {"source": "llama-server timings", "ttft_ms": percentiles_ms(
                    [v["prompt_ms"] / 1000 for v in values if "prompt_ms" in v]),
                "tpot_ms": percentiles_ms([v["predicted_per_token_ms"] / 1000 for v in values
                                           if v.get("predicted_n", 0) > 1]),
                "prompt_cache": prompt_cache_figures(values, cache_prompt=self.cache_prompt,
                                                     shared_prefix_tokens=self.fresh.prefix_tokens),
                "prompts": dict(self.sent)}

    def check(self) -> None:
        if self.error is None and not self.server.alive():
            self.fail(self.server.died())
        super().check()

    def stop_work(self) -> None:
        """Aborted (Ctrl-C, a failure): stop the server now and unblock the client threads' reads."""
        self.server.stop()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.abort()
        self.streams.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        settings = self.server.settings
        return {"system": self.kind, "command": " ".join(self.server.command(self.server.port)),
                "server_version": self.version, "parallel": self.server.parallel, "threads": self.server.threads,
                "ctx_size": self.server.ctx, "ports_tried": self.server.tried_ports,
                "server_settings": settings.describe(),
                "prompts": self.fresh.describe(),
                "client_streams": {"threads": stream_threads(self.server.parallel),
                                   "why": f"the {self.server.parallel} slots plus {QUEUE_ALLOWANCE_PER_SLOT} queued "
                                          "request per slot; later arrivals wait in the client's queue"},
                "request": {"prompt": "token ids (BOS from the harness's tokenizer, none added)",
                            "n_predict": self.prompts.new_tokens, "samplers": ["top_k"], "top_k": 1,
                            "ignore_eos": True, "cache_prompt": self.cache_prompt, "stream": True},
                "generation": "llama-server continuous batching: --parallel slots share one batch; a request "
                              "joins at any step"}


def prompt_cache_figures(timings: list[dict[str, Any]], *, cache_prompt: bool,
                         shared_prefix_tokens: int) -> dict[str, Any]:
    """What the prompt cache did over a test's queries: the prompt tokens llama-server took from its
    cache (``cache_n``) and those it evaluated (``prompt_n``), summed, and the cached share."""
    cached = sum(int(t.get("cache_n", 0)) for t in timings)
    evaluated = sum(int(t.get("prompt_n", 0)) for t in timings)
    total = cached + evaluated
    return {"queries": len(timings), "prompt_tokens": total, "evaluated_tokens": evaluated, "cached_tokens": cached,
            "cached_share": round(cached / total, 4) if total else None,
            "max_cached_per_query": max((int(t.get("cache_n", 0)) for t in timings), default=0),
            "cache_prompt": cache_prompt, "shared_prefix_tokens": shared_prefix_tokens}


def fresh_prompts(prompts: Prompts, settings: ServerSettings) -> PromptPool:
    """The pool a new server draws its performance prompts from (serving/prompt_pool.py)."""
    if prompts.held_out is None:
        raise QuantbenchError("llama-server needs held-out text for fresh prompts (Prompts.held_out is None): "
                              "build the prompts with quantbench.serving.workload.prompts")
    return PromptPool(prompts.held_out, prompt_len=int(prompts.ids.shape[1]), bos=prompts.bos,
                      shared_prefix_tokens=int(settings.shared_prefix_tokens.value),
                      prefix_key="serving.llama_server.shared_prefix_tokens")


def ctx_per_slot(prompts: Prompts) -> int:
    need = int(prompts.ids.shape[1]) + prompts.new_tokens
    return max(CTX_BLOCK, -(-need // CTX_BLOCK) * CTX_BLOCK)


class LlamaServerAdapter:
    """What serving/cell.py asks of a backend that serves through its own server."""

    name = "llama-server"
    setting_name = "parallel"  # what a suite batch size sets: llama-server's --parallel slots

    def unavailable(self) -> str | None:
        binary, where = find_binary()
        if binary is None:
            return (f"llama-server not found (looked at {where}): scripts/install_llamacpp.sh builds it with the "
                    "bindings (make llm / make test run it)")
        return None

    @contextlib.contextmanager
    def open(self, variant, prompts: Prompts, *, setting: int, threads: int | None, log_dir: Path,
             options=None) -> Iterator[LlamaServerSystem]:
        """``threads``: the suite's ``measure.threads``; ``options``: its ``serving.llama_server``
        (suite/llama_server.py); None for either means the server's default."""
        binary, where = find_binary()
        if binary is None:
            raise QuantbenchError(self.unavailable())
        settings = resolve(options, threads)
        fresh = fresh_prompts(prompts, settings)  # checked before a server starts
        gguf = Path(variant.info.artifact)
        server = ServerProcess(binary, gguf, parallel=setting, settings=settings,
                               ctx_per_slot=ctx_per_slot(prompts), log_path=log_dir / "llama-server.log")
        server.start()
        system = None
        try:
            system = LlamaServerSystem(server, prompts, version=server_version(binary), fresh=fresh)
            yield system
        finally:
            if system is not None:
                system.close()
            server.stop()


ADAPTER = LlamaServerAdapter()
