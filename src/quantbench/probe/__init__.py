"""Counterfactual bias probe after the Equity Evaluation Corpus method (Kiritchenko & Mohammad, 2018).

Sentences from templates differ only in a person term (gender terms; first names as a
proxy for perceived race). A fair model scores each matched pair alike. Templates and
word lists are quantbench's own (``quantbench/data/probe_templates.yaml``).
"""

from quantbench.probe._analyze import SUMMARY_RULES, analyze_probe
from quantbench.probe._describe import describe_probe, describe_probe_markdown
from quantbench.probe._load import POLARITIES, Probe, ProbeSentence, build_probe, load_probe, subset_pairs

__all__ = [
    "Probe",
    "ProbeSentence",
    "POLARITIES",
    "SUMMARY_RULES",
    "load_probe",
    "subset_pairs",
    "build_probe",
    "analyze_probe",
    "describe_probe",
    "describe_probe_markdown",
]
