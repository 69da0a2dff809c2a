"""quantbench.probe: composition of the built-in probe, user files, and the bias figures."""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference

from quantbench.errors import QuantbenchError
from quantbench.probe import analyze_probe, describe_probe, describe_probe_markdown, load_probe

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fairness.md"


@pytest.fixture(scope="module")
def probe():
    return load_probe()


def _pairs(probe):
    pairs = defaultdict(list)
    for s in probe.sentences:
        pairs[s.pair_id].append(s)
    return pairs


def _without(sentence):
    # Remove the person term as a whole word ("he" must not match inside "the").
    return re.sub(rf"\b{re.escape(sentence.person_text)}\b", "", sentence.text, count=1)


# --- composition -----------------------------------------------------------------------

def test_size_and_dimensions(probe):
    assert 1000 <= len(probe) <= 3000
    assert set(probe.dimensions) == {"gender", "race_names"}
    assert len(_pairs(probe)) * 2 == len(probe)
    assert [s.index for s in probe.sentences] == list(range(len(probe)))


def test_every_pair_differs_only_in_the_person_term(probe):
    for pair_id, (a, b) in _pairs(probe).items():
        assert (a.side, b.side) == (0, 1), pair_id
        assert a.group != b.group and a.person != b.person
        for field in ("template_id", "emotion", "polarity", "label", "dimension", "term_kind", "subgroup"):
            assert getattr(a, field) == getattr(b, field), (pair_id, field)
        assert a.person_text in a.text and b.person_text in b.text
        assert _without(a) == _without(b), pair_id
        assert a.text != b.text


def test_polarities_and_groups_balanced(probe):
    for dim, (group_a, group_b) in probe.dimensions.items():
        rows = [s for s in probe.sentences if s.dimension == dim]
        assert Counter(s.group for s in rows) == {group_a: len(rows) // 2, group_b: len(rows) // 2}
        by_pol = Counter(s.polarity for s in rows)
        assert by_pol["positive"] == by_pol["negative"] > 0
        assert {s.label for s in rows if s.polarity == "positive"} == {1}
        assert {s.label for s in rows if s.polarity == "negative"} == {0}
    names = [s for s in probe.sentences if s.dimension == "race_names"]
    assert Counter(s.subgroup for s in names) == {"female": len(names) // 2, "male": len(names) // 2}


def test_pronouns_only_in_subject_templates(probe):
    pronoun_templates = {s.template_id for s in probe.sentences if s.term_kind == "pronoun"}
    assert "news_left" not in pronoun_templates and "after_call" in pronoun_templates
    assert any(s.text.startswith("She ") for s in probe.sentences)
    assert not any(re.search(r"\b(left|with) (she|he)\b", s.text) for s in probe.sentences)


def test_docs_show_the_generated_composition(probe):
    assert describe_probe_markdown(probe) in DOCS.read_text(encoding="utf-8"), \
        "docs/fairness.md is stale: paste `python -m quantbench.probe` output"
    d = describe_probe(probe)
    assert d["n_sentences"] == len(probe) and d["dimensions"]["gender"]["n_pairs"] == 428


# --- analysis ----------------------------------------------------------------------------

POSITIVE_CUES = {"cheerful", "delighted", "grateful", "hopeful", "relaxed", "wonderful", "moon"}


def _base_score(text):
    # An unbiased "model": reads only the emotion cue words, never the person term.
    words = set(re.findall(r"[a-z]+", text.lower()))
    return 0.85 if words & POSITIVE_CUES else 0.15


def _contains_any(text, terms):
    return any(re.search(rf"\b{re.escape(t)}\b", text, flags=re.IGNORECASE) for t in terms)


def _run(probe, scorer):
    scores = np.array([scorer(t) for t in probe.texts])
    return analyze_probe(probe, scores, (scores > 0.5).astype(int))


def _terms(probe, dimension, group):
    return {s.person for s in probe.sentences if s.dimension == dimension and s.group == group}


def test_unbiased_scorer_shows_no_bias(probe):
    result = _run(probe, _base_score)
    json.loads(json.dumps(result))
    assert result["flip_rate"] == 0.0
    assert result["score_gap_mean"] == 0.0 and result["score_gap_max"] == 0.0
    assert result["dp_difference"] == pytest.approx(0.0, abs=1e-12)
    assert result["eo_difference"] == pytest.approx(0.0, abs=1e-12)
    assert result["worst_group_accuracy"] == 1.0
    for dim in ("gender", "race_names"):
        info = result["by_dimension"][dim]
        assert info["wilcoxon_p"] == 1.0 and info["test_note"] == "all paired differences are zero"
        assert info["signed_gap_mean"] == 0.0


def test_female_keyed_scorer_is_caught(probe):
    female = _terms(probe, "gender", "female")

    def biased(text):
        return min(1.0, _base_score(text) + (0.45 if _contains_any(text, female) else 0.0))

    result = _run(probe, biased)
    gender = result["by_dimension"]["gender"]
    assert gender["flip_rate"] == pytest.approx(0.5)  # every negative pair flips
    assert result["flip_rate"] == gender["flip_rate"] > 0.3  # summary: worst dimension
    assert result["by_dimension"]["race_names"]["flip_rate"] == 0.0
    assert gender["signed_gap_mean"] > 0.2  # female minus male
    assert gender["score_gap_max"] == pytest.approx(0.45)
    assert result["score_gap_max"] == pytest.approx(0.45)
    assert gender["wilcoxon_p"] < 1e-6
    assert gender["by_group"]["female"]["selection_rate"] == 1.0
    assert gender["by_group"]["male"]["selection_rate"] == 0.5
    assert result["dp_difference"] == pytest.approx(0.5)
    assert result["worst_group_accuracy"] == pytest.approx(0.5)  # female: negatives read as positive
    # the dp figure is fairlearn's on the gender sentences
    rows = [s for s in probe.sentences if s.dimension == "gender"]
    preds = [int(biased(s.text) > 0.5) for s in rows]
    assert gender["dp_difference"] == demographic_parity_difference(
        [s.label for s in rows], preds, sensitive_features=[s.group for s in rows])


def test_name_keyed_scorer_has_negative_signed_gap(probe):
    names_a = _terms(probe, "race_names", "african_american")

    def biased(text):
        return max(0.0, _base_score(text) - (0.45 if _contains_any(text, names_a) else 0.0))

    result = _run(probe, biased)
    race = result["by_dimension"]["race_names"]
    assert race["flip_rate"] == pytest.approx(0.5)  # every positive pair flips
    assert race["signed_gap_mean"] < -0.2 and race["wilcoxon_p"] < 1e-6
    assert race["worst_group"] == "african_american"
    assert result["by_dimension"]["gender"]["flip_rate"] == 0.0


def test_three_class_model_labels(probe):
    # A 0=negative, 1=neutral, 2=positive model that says "neutral" for every negative sentence.
    scores = np.array([_base_score(t) for t in probe.texts])
    preds = np.where(scores > 0.5, 2, 1)
    result = analyze_probe(probe, scores, preds, positive_label=2, negative_label=0)
    assert result["worst_group_accuracy"] == pytest.approx(0.5)
    assert result["flip_rate"] == 0.0


def test_analyze_rejects_bad_inputs(probe):
    n = len(probe)
    with pytest.raises(QuantbenchError, match=f"expected {n} values"):
        analyze_probe(probe, np.zeros(n - 1), np.zeros(n, dtype=int))
    scores = np.zeros(n)
    scores[7] = np.nan
    with pytest.raises(QuantbenchError, match="first at sentence 7"):
        analyze_probe(probe, scores, np.zeros(n, dtype=int))


# --- user template files --------------------------------------------------------------

USER_FILE = """
templates:
  - {id: t1, text: "{person} is {emotion} today.", pronoun_ok: true}
  - {id: t2, text: "We met {person} at a dreadful party.", polarity: negative}
emotions:
  positive: [glad]
  negative: [sad]
dimensions:
  gender:
    groups: [female, male]
    pairs:
      - {terms: [she, he], kind: pronoun}
      - {terms: [my aunt, my uncle]}
"""


def test_user_template_file_loads(tmp_path):
    path = tmp_path / "probe.yaml"
    path.write_text(USER_FILE)
    probe = load_probe(path)
    # t1: 2 emotions x 2 pairs; t2: 1 pair (no pronoun) -> 5 pairs
    assert len(probe) == 10
    assert "She is glad today." in probe.texts and "We met my uncle at a dreadful party." in probe.texts
    assert not any("met she" in t.lower() for t in probe.texts)
    assert describe_probe(probe)["n_pairs"] == 5


@pytest.mark.parametrize("old, new, key", [
    ("emotions:\n  positive: [glad]\n  negative: [sad]\n", "", "emotions"),
    ("  negative: [sad]\n", "", "emotions.negative"),
    (', polarity: negative}', '}', "templates[1].polarity"),
    ('{id: t1, ', '{', "templates[0].id"),
    ("{person} is {emotion} today.", "Someone is {emotion} today.", "templates[0].text"),
    ("{terms: [my aunt, my uncle]}", "{words: [my aunt, my uncle]}", "dimensions.gender.pairs[1].terms"),
    ("groups: [female, male]", "groups: [female]", "dimensions.gender.groups"),
])
def test_malformed_user_file_names_the_key(tmp_path, old, new, key):
    assert old in USER_FILE
    path = tmp_path / "bad.yaml"
    path.write_text(USER_FILE.replace(old, new))
    with pytest.raises(QuantbenchError) as info:
        load_probe(path)
    assert f": {key}:" in str(info.value)
    assert str(path) in str(info.value)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(QuantbenchError, match="cannot read"):
        load_probe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates: [\n")
    with pytest.raises(QuantbenchError, match="not valid YAML"):
        load_probe(bad)
