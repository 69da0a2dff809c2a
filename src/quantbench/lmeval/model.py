"""lm-evaluation-harness's ``LM`` interface over any quantbench variant: the model named ``quantbench``.

``lm_eval`` finds it once this module is imported (``quantbench lm-eval`` does that; lm-eval
0.4.13 has no plugin entry point, so its own ``lm_eval --model quantbench`` cannot). Model
args: ``suite`` (a suite name or YAML path, default ``llm``), ``quant``, ``backend``, ``model``
(default: the suite's first text-generation model), ``device`` (``cpu``) and ``max_length``.
The variant is built as the sweep builds it (:mod:`quantbench.lmeval.variant`).

How requests meet the variant:

* **Tokens** are made as lm-eval's own ``hf`` model makes them (``TemplateLM``'s context /
  continuation split, the same ``tok_encode``, the BOS-else-EOS prefix for an empty context,
  left truncation to ``max_length``), and fed to every runtime as these ids: nothing is
  re-tokenized, so PyTorch, ONNX Runtime, OpenVINO and llama.cpp see the same tokens.
* **loglikelihood** goes through the variant's batch-invariant scoring path, the one perplexity
  uses (``scoring.forward_passes``): length-sorted, right-padded and masked batches for methods
  whose output cannot depend on their neighbours, one request per pass for batch-sensitive ones
  (``quality/batching.py``). Requests with the same input (context + continuation minus its last
  token, e.g. the choices of a multiple-choice question) share one pass, as lm-eval's ``hf``
  does; a one-token continuation reads one position (``logits_at``).
* **loglikelihood_rolling** uses lm-eval's disjoint windows of ``max_length`` tokens
  (``get_rolling_token_windows`` with context 1, ``make_disjoint_window``), each window scored as
  a loglikelihood request: every token predicted once, the first from the prefix token.
* **generate_until** is greedy only (``do_sample`` is refused), one request at a time through the
  variant's ``generate``: up to ``max_gen_toks`` new tokens, stopping at the model's EOS, and the
  text is cut at the first ``until`` string as lm-eval does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lm_eval import utils as lm_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import (
    handle_stop_sequences,
    has_bos_prefix,
    normalize_gen_kwargs,
    postprocess_generated_text,
    resolve_max_length,
)
from tqdm import tqdm

from quantbench.errors import QuantbenchError
from quantbench.lmeval.variant import OpenedVariant, open_variant
from quantbench.quality import batching
from quantbench.quality.lm_scoring import forward_passes

MODEL_NAME = "quantbench"
ROLLING_WINDOWS = ("lm-eval's disjoint windows of max_length tokens (get_rolling_token_windows, context_len=1, "
                   "make_disjoint_window): every token predicted once, the first from the prefix token")
GENERATION = ("greedy through the variant's generate, one request at a time, up to max_gen_toks new tokens, "
              "stopping at EOS; text cut at the first until string")
#: generate_until asks for this many tokens first, then twice as many until a stop is seen.
FIRST_CHUNK = 16


def _batch_size(value: Any, default: int) -> int:
    """lm-eval's ``--batch_size``: an integer, or "auto" (the suite's eval batch size here)."""
    if value is None or (isinstance(value, str) and value.startswith("auto")):
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise QuantbenchError(f"batch_size {value!r} is not a positive integer or 'auto'") from None
    if size < 1:
        raise QuantbenchError(f"batch_size {value!r} is not a positive integer or 'auto'")
    return size


@register_model(MODEL_NAME)
class QuantbenchLM(TemplateLM):
    """A quantbench variant as an lm-eval model (see the module docstring)."""

    backend = "causal"

    def __init__(self, suite: str = "llm", quant: str = "fp32", backend: str = "pytorch", model: str | None = None,
                 device: str | None = None, batch_size: Any = None, max_batch_size: Any = None,
                 max_length: int | None = None, *, opened: OpenedVariant | None = None, **unknown: Any):
        super().__init__()
        if unknown:
            raise QuantbenchError(f"quantbench model: unknown model_args {', '.join(sorted(unknown))}; known: suite, "
                                  "model, quant, backend, device, max_length")
        # lm-eval names devices as torch does ("cuda:0"); a suite names the kind ("cuda").
        self._opened = opened or open_variant(suite=str(suite), model=model, quant=str(quant), backend=str(backend),
                                              device=str(device or "cpu").split(":")[0])
        self._owns_variant = opened is None
        cell = self._opened.cell
        self.cell, self.variant, self.tokenizer = cell, self._opened.variant, self._opened.tokenizer
        self.mode = batching.default_mode(cell)
        # A batch-sensitive method is scored one request per pass, whatever lm-eval asks for.
        self.batch_size = 1 if self.mode == batching.ALONE else _batch_size(batch_size, cell.batch_size)
        self._max_length = int(max_length) if max_length else self._checkpoint_max_length()
        self._eos_ids = self._end_of_sequence_ids()

    # -- what lm-eval asks of a TemplateLM -------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        """BOS, else EOS: what lm-eval's ``hf`` model conditions an empty context on."""
        bos = self.tokenizer.bos_token_id
        return self.tokenizer.eos_token_id if bos is None else bos

    @property
    def max_length(self) -> int:
        """``max_length`` if given, else what lm-eval's ``hf`` model reads from the same checkpoint."""
        return self._max_length

    def _checkpoint_max_length(self) -> int:
        from transformers import AutoConfig

        return resolve_max_length(AutoConfig.from_pretrained(self._opened.checkpoint), self.tokenizer)

    @property
    def max_gen_toks(self) -> int:
        return 256

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "")).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                   **kwargs: Any) -> list[int]:
        """As lm-eval's ``hf`` model encodes (its default: the tokenizer's own special tokens)."""
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id)):
            special["add_special_tokens"] = False
        encoding = self.tokenizer.encode(string, **special)
        return encoding[-left_truncate_len:] if left_truncate_len else encoding

    def tok_decode(self, tokens: Any, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval's results JSON records under ``config``: the variant and how it was scored."""
        info = self.variant.info
        return {"quantbench_variant": self.cell.variant_id, "quantbench_quant": self.cell.quant,
                "quantbench_backend": self.cell.backend, "quantbench_device": self.cell.device,
                "quantized_layers": info.quantized_layers, "quant_config": info.quant_config,
                "baseline_note": self._opened.baseline_note,
                "quality_scoring": batching.describe(self.cell, self.mode, self.batch_size),
                "loglikelihood_rolling_windows": ROLLING_WINDOWS, "generate_until": GENERATION}

    # -- scoring ---------------------------------------------------------------------------------

    def _loglikelihood_tokens(self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False,
                              **kwargs: Any) -> list[tuple[float, bool]]:
        """(log p(continuation | context), is greedy) per request, in request order."""
        import torch

        limit = self.max_length
        inputs: dict[tuple[int, ...], list[int]] = {}  # distinct input -> the requests that read it
        spans = []  # per request: (input key, continuation ids)
        for i, (_, context, continuation) in enumerate(requests):
            if not context or not continuation:
                raise QuantbenchError("an lm-eval request with an empty context or continuation after tokenization")
            if len(continuation) > limit:
                raise QuantbenchError(f"a continuation of {len(continuation)} tokens is longer than max_length {limit}")
            key = tuple((context + continuation)[-(limit + 1):][:-1])  # left-truncated, as lm-eval's hf
            inputs.setdefault(key, []).append(i)
            spans.append((key, continuation))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        reach = {key: max(len(spans[i][1]) for i in readers) for key, readers in inputs.items()}
        progress = tqdm(total=len(requests), disable=disable_tqdm, desc="quantbench loglikelihood")
        with torch.inference_mode():
            for last_only in (True, False):  # one-token continuations read one position per pass
                rows = [list(key) for key, span in reach.items() if (span == 1) == last_only]
                for _, batch, logp in forward_passes(self.variant, rows, batch_size=self.batch_size, mode=self.mode,
                                                     last_only=last_only):
                    for j, row in enumerate(batch):
                        end = 1 if last_only else len(row)  # one past the row's last position in logp
                        for i in inputs[tuple(row)]:
                            tokens = spans[i][1]
                            picked = logp[j, end - len(tokens):end]
                            target = torch.as_tensor(tokens)
                            score = float(picked.gather(1, target[:, None]).sum())
                            if not np.isfinite(score):
                                raise QuantbenchError(f"{self.cell.variant_id}: a log-likelihood is NaN or Inf")
                            results[i] = (score, bool((picked.argmax(-1) == target).all()))
                            progress.update(1)
        progress.close()
        for (request, *_), result in zip(requests, results):
            if request is not None:  # rolling windows are cached per text, by their caller
                self.cache_hook.add_partial("loglikelihood", request, result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        windows, owners = [], []
        for index, (string,) in enumerate(req.args for req in requests):
            for context, continuation in map(lm_utils.make_disjoint_window, lm_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                windows.append((None, context, continuation))
                owners.append(index)
        scores = self._loglikelihood_tokens(windows, disable_tqdm=disable_tqdm) if windows else []
        totals = [0.0] * len(requests)
        for owner, (score, _) in zip(owners, scores):
            totals[owner] += score
        for req, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    # -- generation ------------------------------------------------------------------------------

    def _end_of_sequence_ids(self) -> frozenset[int]:
        """The tokens a served request stops at: the tokenizer's EOS and the generation config's."""
        ids = {self.tokenizer.eos_token_id}
        try:
            from transformers import GenerationConfig

            configured = GenerationConfig.from_pretrained(self._opened.checkpoint).eos_token_id
        except OSError:  # no generation_config.json
            configured = None
        ids.update(configured if isinstance(configured, list) else [configured])
        return frozenset(int(i) for i in ids if i is not None)

    def _greedy(self, ids: list[int], max_new: int, until: list[str]) -> list[int]:
        """Greedy tokens after ``ids``, up to the first EOS or ``until`` string or ``max_new``: asks for
        ``FIRST_CHUNK`` tokens, then twice as many (greedy: a shorter run is a prefix of a longer one)."""
        asked = min(FIRST_CHUNK, max_new)
        encoding = {"input_ids": np.asarray([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
        while True:
            out = self.variant.generate(self.variant.prepare(encoding), new_tokens=asked, stop_at_eos=True)
            tokens = [int(t) for t in (out.cpu().numpy() if hasattr(out, "cpu") else np.asarray(out))[0]]
            stop = next((k for k, t in enumerate(tokens) if t in self._eos_ids), None)
            if stop is not None:
                return tokens[:stop]
            text = self.tok_decode(tokens)
            if len(tokens) < asked or asked >= max_new or any(term and term in text for term in until):
                return tokens
            asked = min(2 * asked, max_new)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        import torch

        eos = self.tok_decode([self.eot_token_id], skip_special_tokens=False)
        out = []
        with torch.inference_mode():
            for req in tqdm(requests, disable=disable_tqdm, desc="quantbench generate_until"):
                context, gen_kwargs = req.args
                kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
                if kwargs.get("do_sample"):
                    raise QuantbenchError(f"generate_until with do_sample=True: the quantbench model generates "
                                          f"greedily only (gen_kwargs {gen_kwargs})")
                until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
                max_new = int(kwargs.pop("max_gen_toks"))
                if max_new >= self.max_length:
                    raise QuantbenchError(f"max_gen_toks {max_new} leaves no room for a context in max_length "
                                          f"{self.max_length}")
                ids = self.tok_encode(context, left_truncate_len=self.max_length - max_new)
                text = postprocess_generated_text(self.tok_decode(self._greedy(ids, max_new, until)), until, None)
                out.append(text)
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return out

    def close(self) -> None:
        """Release the variant when this model built it (the sweep's pool releases its own)."""
        if self._owns_variant:
            self._opened.release()
