"""PyTorch's drift reference: a one-layer BERT with seeded weights, timed between rounds."""

from __future__ import annotations

from typing import Any

from quantbench.measures.drift import DriftReference

#: Change the name whenever the workload changes: gates compare equal names only.
TORCH_REFERENCE = "torch-bert-1layer-384h-fp32-bs4-seq64"
_BERT = dict(hidden_size=384, num_hidden_layers=1, num_attention_heads=12, intermediate_size=1536,
             vocab_size=1000, max_position_embeddings=128)
_BERT_SHAPE = (4, 64)


class TorchReference(DriftReference):
    """A one-layer BERT with fixed random weights, built from a config (nothing downloaded)."""

    name = TORCH_REFERENCE

    def __init__(self, device: str):
        import torch
        from transformers import BertConfig, BertModel

        from quantbench.hardware import devices

        self._sync = lambda: devices.synchronize(device)
        with torch.random.fork_rng(devices=[]):  # fixed weights without touching the global RNG
            torch.manual_seed(0)
            self._model = BertModel(BertConfig(**_BERT)).eval().to(device)
            self._inputs = torch.randint(0, _BERT["vocab_size"], _BERT_SHAPE).to(device)
        super().__init__(device)

    def _call(self) -> None:
        import torch

        with torch.inference_mode():
            self._model(input_ids=self._inputs)
            self._sync()

    def describe(self) -> dict[str, Any]:
        import torch

        return {"name": self.name, "device": self.device, "torch": torch.__version__,
                "threads": torch.get_num_threads()}


def reference(device: str, threads: int | None) -> DriftReference:
    return TorchReference(device)
