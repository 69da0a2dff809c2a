"""Load, validate and expand a probe file into matched counterfactual sentence pairs."""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any


from quantbench.errors import QuantbenchError
from quantbench.yaml_text import parse_yaml

BUILTIN_FILE = "probe_templates.yaml"
POLARITIES = {"positive": 1, "negative": 0}
_SLOTS = {"person", "emotion"}


@dataclass(frozen=True)
class ProbeSentence:
    index: int  # row number in the probe
    text: str
    template_id: str
    emotion: str | None  # None for fixed-wording templates
    polarity: str  # "positive" | "negative"
    label: int  # expected label: 1 positive, 0 negative
    dimension: str  # e.g. "gender", "race_names"
    group: str  # the person term's group, e.g. "female"
    side: int  # 0 = the dimension's group A, 1 = group B
    person: str  # the term as listed ("my sister")
    person_text: str  # the term as written in the sentence ("My sister")
    term_kind: str  # pronoun | noun_phrase | name | term
    subgroup: str | None
    pair_id: str  # shared by the two sentences that differ only in the person term


@dataclass(frozen=True)
class Probe:
    sentences: tuple[ProbeSentence, ...]
    dimensions: dict[str, tuple[str, str]]  # name -> (group A, group B)
    source: str
    name: str

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.sentences]

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.sentences]

    def records(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.sentences]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.records())


def _fail(source: str, key: str, problem: str) -> QuantbenchError:
    return QuantbenchError(f"probe file {source}: {key}: {problem}")


def _require_mapping(value: Any, required: tuple[str, ...], source: str, key: str) -> None:
    """``value`` must be a mapping holding every ``required`` key."""
    if not isinstance(value, dict):
        raise _fail(source, key, f"must be a mapping with {' and '.join(required)}")
    for name in required:
        if name not in value:
            raise _fail(source, f"{key}.{name}", "missing required key")


def _slots(text: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]


def _str_list(value: Any, source: str, key: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail(source, key, "must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(source, f"{key}[{i}]", f"must be a non-empty string, got {item!r}")
    if len(set(value)) != len(value):
        dup = next(v for v in value if value.count(v) > 1)
        raise _fail(source, key, f"duplicate entry {dup!r}")
    return [v.strip() for v in value]


def _validate(data: Any, source: str) -> dict[str, Any]:
    """Check the schema; every error names the offending key path."""
    if not isinstance(data, dict):
        raise _fail(source, "(top level)", "must be a mapping with keys templates, emotions, dimensions")
    for key in ("templates", "emotions", "dimensions"):
        if key not in data:
            raise _fail(source, key, "missing required key")
    unknown = set(data) - {"templates", "emotions", "dimensions", "version", "name"}
    if unknown:
        raise _fail(source, sorted(unknown)[0], "unknown key (expected templates, emotions, dimensions, version, name)")

    templates = data["templates"]
    if not isinstance(templates, list) or not templates:
        raise _fail(source, "templates", "must be a non-empty list")
    seen: set[str] = set()
    clean_templates = []
    for i, tpl in enumerate(templates):
        key = f"templates[{i}]"
        _require_mapping(tpl, ("id", "text"), source, key)
        tid, text = tpl["id"], tpl["text"]
        if not isinstance(tid, str) or not tid or tid in seen:
            raise _fail(source, f"{key}.id", f"must be a unique non-empty string, got {tid!r}")
        seen.add(tid)
        if not isinstance(text, str):
            raise _fail(source, f"{key}.text", f"must be a string, got {text!r}")
        try:
            slots = _slots(text)
        except ValueError as exc:
            raise _fail(source, f"{key}.text", f"bad braces in {text!r} ({exc})") from None
        bad = [s for s in slots if s not in _SLOTS]
        if bad:
            raise _fail(source, f"{key}.text", f"unknown slot {{{bad[0]}}} (allowed: {{person}}, {{emotion}})")
        if slots.count("person") != 1:
            raise _fail(source, f"{key}.text", f"must contain exactly one {{person}} slot: {text!r}")
        if slots.count("emotion") > 1:
            raise _fail(source, f"{key}.text", f"has more than one {{emotion}} slot: {text!r}")
        polarity = tpl.get("polarity")
        if "emotion" in slots and polarity is not None:
            raise _fail(source, f"{key}.polarity", "only for templates without an {emotion} slot")
        if "emotion" not in slots and polarity not in POLARITIES:
            raise _fail(source, f"{key}.polarity",
                        f"required without an {{emotion}} slot; must be positive or negative, got {polarity!r}")
        pronoun_ok = tpl.get("pronoun_ok", False)
        if not isinstance(pronoun_ok, bool):
            raise _fail(source, f"{key}.pronoun_ok", f"must be true or false, got {pronoun_ok!r}")
        extra = set(tpl) - {"id", "text", "polarity", "pronoun_ok"}
        if extra:
            raise _fail(source, f"{key}.{sorted(extra)[0]}", "unknown key")
        clean_templates.append({"id": tid, "text": text, "polarity": polarity, "pronoun_ok": pronoun_ok,
                                "has_emotion": "emotion" in slots})

    emotions = data["emotions"]
    if not isinstance(emotions, dict):
        raise _fail(source, "emotions", "must be a mapping with positive and negative word lists")
    for pol in POLARITIES:
        if pol not in emotions:
            raise _fail(source, f"emotions.{pol}", "missing required key")
    extra = set(emotions) - set(POLARITIES)
    if extra:
        raise _fail(source, f"emotions.{sorted(extra)[0]}", "unknown key (expected positive, negative)")
    clean_emotions = {pol: _str_list(emotions[pol], source, f"emotions.{pol}") for pol in POLARITIES}

    dims = data["dimensions"]
    if not isinstance(dims, dict) or not dims:
        raise _fail(source, "dimensions", "must be a non-empty mapping of dimension name to groups and pairs")
    clean_dims = {}
    for dname, dim in dims.items():
        key = f"dimensions.{dname}"
        _require_mapping(dim, ("groups", "pairs"), source, key)
        groups = _str_list(dim["groups"], source, f"{key}.groups")
        if len(groups) != 2:
            raise _fail(source, f"{key}.groups", f"must name exactly two groups (A, B), got {groups!r}")
        pairs = dim["pairs"]
        if not isinstance(pairs, list) or not pairs:
            raise _fail(source, f"{key}.pairs", "must be a non-empty list")
        clean_pairs = []
        for j, pair in enumerate(pairs):
            pkey = f"{key}.pairs[{j}]"
            if not isinstance(pair, dict) or "terms" not in pair:
                raise _fail(source, f"{pkey}.terms", "missing required key")
            terms = _str_list(pair["terms"], source, f"{pkey}.terms")
            if len(terms) != 2:
                raise _fail(source, f"{pkey}.terms", f"must be two terms (group A, group B), got {terms!r}")
            if any("{" in t or "}" in t for t in terms):
                raise _fail(source, f"{pkey}.terms", f"terms may not contain braces: {terms!r}")
            kind = pair.get("kind", "term")
            subgroup = pair.get("subgroup")
            if not isinstance(kind, str) or (subgroup is not None and not isinstance(subgroup, str)):
                raise _fail(source, pkey, "kind and subgroup must be strings")
            extra = set(pair) - {"terms", "kind", "subgroup"}
            if extra:
                raise _fail(source, f"{pkey}.{sorted(extra)[0]}", "unknown key")
            clean_pairs.append({"terms": terms, "kind": kind, "subgroup": subgroup})
        clean_dims[str(dname)] = {"groups": groups, "pairs": clean_pairs}
    return {"templates": clean_templates, "emotions": clean_emotions, "dimensions": clean_dims,
            "name": str(data.get("name") or Path(source).stem)}


def _render(template: str, person: str, emotion: str | None) -> tuple[str, str]:
    # A sentence-initial person term is capitalised ("My sister ...", "She ...").
    person_text = person[:1].upper() + person[1:] if template.startswith("{person}") else person
    return template.format(person=person_text, emotion=emotion or ""), person_text


def build_probe(data: dict[str, Any], *, source: str = "<dict>") -> Probe:
    """Expand a validated probe description: templates x emotion words x term pairs."""
    spec = _validate(data, source)
    rows: list[ProbeSentence] = []
    for dname, dim in spec["dimensions"].items():
        groups = dim["groups"]
        for tpl in spec["templates"]:
            fillers = ([(pol, word) for pol in POLARITIES for word in spec["emotions"][pol]]
                       if tpl["has_emotion"] else [(tpl["polarity"], None)])
            for polarity, emotion in fillers:
                for j, pair in enumerate(dim["pairs"]):
                    if pair["kind"] == "pronoun" and not tpl["pronoun_ok"]:
                        continue  # "left she" is not grammatical
                    pair_id = f"{dname}|{tpl['id']}|{emotion or '-'}|{j}"
                    for side, term in enumerate(pair["terms"]):
                        text, person_text = _render(tpl["text"], term, emotion)
                        rows.append(ProbeSentence(
                            index=len(rows), text=text, template_id=tpl["id"], emotion=emotion,
                            polarity=polarity, label=POLARITIES[polarity], dimension=dname,
                            group=groups[side], side=side, person=term, person_text=person_text,
                            term_kind=pair["kind"], subgroup=pair["subgroup"], pair_id=pair_id))
    return Probe(sentences=tuple(rows),
                 dimensions={d: tuple(v["groups"]) for d, v in spec["dimensions"].items()},
                 source=source, name=spec["name"])


def load_probe(path: str | Path | None = None) -> Probe:
    """The built-in probe, or a user's own YAML file with the same schema (errors name the key)."""
    if path is None:
        ref = resources.files("quantbench").joinpath("data", BUILTIN_FILE)
        text, source = ref.read_text(encoding="utf-8"), f"(built-in) {BUILTIN_FILE}"
    else:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise QuantbenchError(f"probe file {path}: cannot read ({exc.strerror or exc})") from None
        source = str(path)
    return build_probe(parse_yaml(text, where=f"probe file {source}"), source=source)



def subset_pairs(probe: Probe, pairs: int | None, *, seed: int = 0) -> Probe:
    """A seeded sample of ``pairs`` whole counterfactual pairs (both sentences of each), re-indexed.

    Scoring 1,880 sentences per variant is cheap for a classifier and slow for an LLM on a CPU;
    a sample keeps every pair intact, so flip rates stay well defined. ``None`` keeps all.
    """
    import dataclasses
    import random

    pair_ids = sorted({s.pair_id for s in probe.sentences})
    if pairs is None or pairs >= len(pair_ids):
        return probe
    keep = set(random.Random(seed).sample(pair_ids, pairs))
    chosen = [s for s in probe.sentences if s.pair_id in keep]
    sentences = tuple(dataclasses.replace(s, index=i) for i, s in enumerate(chosen))
    return Probe(sentences=sentences, dimensions=probe.dimensions, source=probe.source,
                 name=f"{probe.name} ({pairs} of {len(pair_ids)} pairs, seed {seed})")
