# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# torch is chosen before the project is installed: a host with a GPU keeps (or gets) the CUDA
# build from the default index; a host without one takes the CPU wheel (TORCH_CPU_SPEC), never
# a multi-GB CUDA download. Point pip at a CPU index with PIP_EXTRA_INDEX_URL where needed.
TORCH_CPU_SPEC ?= torch==2.13.0

.PHONY: setup demo test clean

$(BIN)/regmix-train: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
	    echo "torch already installed: $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    $(BIN)/pip install torch; \
	else \
	    $(BIN)/pip install "$(TORCH_CPU_SPEC)"; \
	fi
	$(BIN)/pip install -e ".[test]"
	touch $@

setup: $(BIN)/regmix-train

demo: setup
	$(BIN)/regmix-demo

test: setup
	$(BIN)/python -m pytest -n auto  # one worker per core: most tests wait on subprocesses

clean:
	rm -rf $(VENV) runs data outputs multirun
