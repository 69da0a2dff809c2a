"""Every quantbench variant as an lm-evaluation-harness model, and lm-eval tasks in suites.

* :mod:`~quantbench.lmeval.model`: the ``quantbench`` lm-eval model (imports lm-eval);
* :mod:`~quantbench.lmeval.variant`: builds a suite's variant as the sweep does;
* :mod:`~quantbench.lmeval.shipped`: the shipped ``tweets_sentiment`` task, built once per split;
* :mod:`~quantbench.lmeval.runner`: lm-eval's evaluator on a quantbench model;
* :mod:`~quantbench.lmeval.figures`: lm-eval's results JSON as record figures, paired against fp32;
* :mod:`~quantbench.lmeval.quality`: the sweep's ``test_lm_eval`` pass;
* :mod:`~quantbench.lmeval.commands`: ``quantbench lm-eval``, lm-eval's CLI with the model registered.

Nothing here names a runtime: a variant is whatever the registry's recipe builds.
"""
