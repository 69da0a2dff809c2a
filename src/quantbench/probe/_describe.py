"""Size and composition of a probe, as data and as the Markdown table in docs/fairness.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

from quantbench.probe._load import Probe, load_probe


def describe_probe(probe: Probe | None = None) -> dict[str, Any]:
    """Counts for a probe (the built-in one by default); the docs are generated from this."""
    probe = probe if probe is not None else load_probe()
    sentences = probe.sentences
    dims: dict[str, Any] = {}
    for dim, (group_a, group_b) in probe.dimensions.items():
        rows = [s for s in sentences if s.dimension == dim]
        terms: dict[str, list[str]] = {group_a: [], group_b: []}
        for s in rows:
            if s.person not in terms[s.group]:
                terms[s.group].append(s.person)
        dims[dim] = {
            "groups": [group_a, group_b],
            "n_sentences": len(rows),
            "n_pairs": len({s.pair_id for s in rows}),
            "sentences_by_group": dict(sorted(Counter(s.group for s in rows).items())),
            "sentences_by_polarity": dict(sorted(Counter(s.polarity for s in rows).items())),
            "sentences_by_term_kind": dict(sorted(Counter(s.term_kind for s in rows).items())),
            "sentences_by_subgroup": dict(sorted(Counter(s.subgroup for s in rows if s.subgroup).items())),
            "terms": terms,
        }
    templates = list(dict.fromkeys(s.template_id for s in sentences))
    return {
        "name": probe.name,
        "source": probe.source,
        "n_sentences": len(sentences),
        "n_pairs": len({s.pair_id for s in sentences}),
        "n_templates": len(templates),
        "n_templates_with_emotion_slot": len({s.template_id for s in sentences if s.emotion is not None}),
        "emotion_words": {pol: sorted({s.emotion for s in sentences if s.emotion and s.polarity == pol})
                          for pol in ("positive", "negative")},
        "sentences_by_polarity": dict(sorted(Counter(s.polarity for s in sentences).items())),
        "dimensions": dims,
    }


def describe_probe_markdown(probe: Probe | None = None) -> str:
    """The composition section of docs/fairness.md (``python -m quantbench.probe`` prints it)."""
    d = describe_probe(probe)
    pol = d["sentences_by_polarity"]
    lines = [
        f"Probe `{d['name']}`: **{d['n_sentences']} sentences in {d['n_pairs']} matched pairs**, from "
        f"{d['n_templates']} templates ({d['n_templates_with_emotion_slot']} with an emotion slot, "
        f"{d['n_templates'] - d['n_templates_with_emotion_slot']} with fixed wording) and "
        f"{len(d['emotion_words']['positive'])} positive + {len(d['emotion_words']['negative'])} negative "
        f"emotion words; {pol.get('positive', 0)} positive and {pol.get('negative', 0)} negative sentences.",
        "",
        "| dimension | group A | group B | pairs | sentences | per group | by term kind | by subgroup |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for dim, info in d["dimensions"].items():
        def fmt(counts: dict) -> str:
            return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
        lines.append(f"| {dim} | {info['groups'][0]} | {info['groups'][1]} | {info['n_pairs']} | "
                     f"{info['n_sentences']} | {fmt(info['sentences_by_group'])} | "
                     f"{fmt(info['sentences_by_term_kind'])} | {fmt(info['sentences_by_subgroup'])} |")
    lines += ["", f"Positive emotion words: {', '.join(d['emotion_words']['positive'])}.",
              f"Negative emotion words: {', '.join(d['emotion_words']['negative'])}.", ""]
    for dim, info in d["dimensions"].items():
        for group, terms in info["terms"].items():
            lines.append(f"- {dim} / {group}: {', '.join(terms)}")
    return "\n".join(lines) + "\n"
