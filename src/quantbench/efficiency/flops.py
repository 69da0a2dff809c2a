"""FLOPs and bytes of one timed call, counted from the model's config (config.json as a dict).

Counting rule (docs/efficiency.md): a matmul of an (m x k) input by a (k x n) weight is 2·m·k·n
FLOPs. Per token, every Linear weight of a layer is one such matmul, so a layer costs
2 x (its Linear parameters) per token. Attention adds QK^T and A·V: 2 x 2 x (query tokens) x
(key tokens) x hidden per layer (the full square, as SDPA computes it, also under a causal
mask). Embedding lookups, norms, activations and softmax are not counted (they are memory-bound
and small). Classifier heads (pooler, classification layer) count once per sequence. A causal
LM's lm_head counts for the positions whose logits generate reads: the last one of the prompt,
then one per decode step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantbench.errors import QuantbenchError


@dataclass(frozen=True)
class Shape:
    """The transformer dimensions the count needs."""

    layers: int
    hidden: int
    intermediate: int
    kv_dim: int  # key/value width (hidden for full multi-head attention, less with GQA)
    vocab: int
    gated_mlp: bool  # Llama-style gate/up/down (3 matrices) instead of up/down (2)
    labels: int = 0  # classification head outputs
    pooler: bool = False

    @property
    def layer_params(self) -> int:
        """Linear weights of one layer: q, o (hidden²), k, v (hidden x kv_dim), and the MLP."""
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        return 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_dim + mlp

    @property
    def body_params(self) -> int:
        """Linear weights of every layer: what each token multiplies through."""
        return self.layers * self.layer_params


def shape_of(config: dict[str, Any], *, classifier: bool) -> Shape:
    try:
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        intermediate = int(config["intermediate_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise QuantbenchError(f"cannot count FLOPs: config lacks {exc} (model_type "
                              f"{config.get('model_type')!r})") from None
    head_dim = int(config.get("head_dim") or hidden // heads)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    gated = config.get("hidden_act") == "silu" or config.get("model_type") in ("llama", "mistral", "qwen2", "gemma")
    labels = len(config.get("id2label") or {}) if classifier else 0
    return Shape(layers=layers, hidden=hidden, intermediate=intermediate, kv_dim=kv_heads * head_dim,
                 vocab=int(config.get("vocab_size") or 0), gated_mlp=gated, labels=labels,
                 pooler=classifier and config.get("model_type") == "bert")


def encoder_flops(shape: Shape, *, batch: int, seq: int) -> int:
    """One forward pass of a sequence classifier over ``batch`` rows of ``seq`` tokens."""
    tokens = batch * seq
    body = 2 * shape.body_params * tokens + 2 * 2 * shape.layers * batch * seq * seq * shape.hidden
    head = 2 * batch * ((shape.hidden * shape.hidden if shape.pooler else 0) + shape.hidden * shape.labels)
    return body + head


def prefill_flops(shape: Shape, *, batch: int, prompt: int) -> int:
    """The prompt pass of generate: every prompt token, logits for the last position only."""
    return (2 * shape.body_params * batch * prompt + 2 * 2 * shape.layers * batch * prompt * prompt * shape.hidden
            + 2 * batch * shape.hidden * shape.vocab)


def decode_step_flops(shape: Shape, *, batch: int, context: int) -> int:
    """One decode step: one new token per row attending to ``context`` cached tokens."""
    return (2 * shape.body_params * batch + 2 * 2 * shape.layers * batch * context * shape.hidden
            + 2 * batch * shape.hidden * shape.vocab)


def generate_flops(shape: Shape, *, batch: int, prompt: int, new_tokens: int) -> tuple[int, int]:
    """(prefill FLOPs, total decode FLOPs) of a generate of ``new_tokens`` tokens per row.

    The first token comes from the prefill; each later one from a decode step whose context is
    the prompt plus the tokens made so far.
    """
    decode = sum(decode_step_flops(shape, batch=batch, context=prompt + t) for t in range(1, new_tokens))
    return prefill_flops(shape, batch=batch, prompt=prompt), decode


def kv_cache_bytes_read(shape: Shape, *, batch: int, context: int, bytes_per_element: int) -> int:
    """Keys and values of every layer read by one decode step at ``context`` tokens."""
    return 2 * shape.layers * batch * context * shape.kv_dim * bytes_per_element
