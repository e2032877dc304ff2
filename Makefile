# Every target bootstraps what it needs: a fresh clone with Python 3.11, pip, gcc
# and make is enough.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
PY := $(BIN)/python
# Used by `make build` to ship bytecode for the Lambda runtime; without it the build
# still works, and the package compiles at cold start instead.
PYTHON313 ?= python3.13
export PYTHON313
# The tool config lives in pyproject.toml; PIP_DISABLE_PIP_VERSION_CHECK keeps output quiet.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# SAM CLI would otherwise try to send usage telemetry, even from `make lint`.
export SAM_CLI_TELEMETRY := 0

.PHONY: help install lint test unit run local build bench reliability figures emulator clean \
	deploy outputs invoke logs delete redrive cli

# Deploying and operating use your AWS credentials and region (AWS_PROFILE, AWS_REGION)
# and samconfig.toml. STACK= names another stack, CONFIG_ENV= another samconfig.toml
# environment; PARAMS='Key=Value ...' overrides the template's parameters for one deploy.
STACK ?=
CONFIG_ENV ?=
PARAMS ?=
SAM_STACK := $(if $(CONFIG_ENV),--config-env $(CONFIG_ENV)) $(if $(STACK),--stack-name $(STACK))

help: ## Show this help (colours only on a terminal)
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on=$$'\033[36m'; off=$$'\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %s%-12s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: layers/dependencies/requirements.txt tests/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r tests/requirements.txt
	$(BIN)/pip install --quiet --no-deps --editable .
	@touch $@

$(SAM_VENV)/.installed: tests/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r tests/requirements-sam.txt
	@touch $@

install: $(VENV)/.installed $(SAM_VENV)/.installed ## Create the virtualenvs (done by every target that needs them)

lint: $(VENV)/.installed $(SAM_VENV)/.installed ## ruff, mypy, complexity, import rules, cfn-lint, sam validate --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/xenon --max-absolute B --max-modules A --max-average A functions layers/core/python
	$(BIN)/lint-imports
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region us-east-1

test: $(VENV)/.installed ## Run the whole test suite (unit + integration on moto server and the Wistia emulator)
	$(BIN)/pytest $(ARGS)

unit: $(VENV)/.installed ## The fast unit tier alone: pure logic and in-memory fakes, sockets disabled
	$(BIN)/pytest tests/unit $(ARGS)

build: $(SAM_VENV)/.installed ## sam build with the makefile build method (no Docker, no local 3.13)
	PATH="$(abspath $(BIN)):$$PATH" $(SAM) build --template template.yaml

run: $(VENV)/.installed ## The whole pipeline offline: moto + Wistia emulator + the function (SOURCE=dir for your files)
	$(PY) -m local_stack.run $(if $(SOURCE),--source "$(SOURCE)")

local: $(VENV)/.installed ## The same local stack as make run, kept up until Ctrl-C, for s3-to-wistia ... --local (SOURCE=dir)
	$(PY) -m local_stack.serve $(if $(SOURCE),--source "$(SOURCE)")

bench: $(VENV)/.installed $(SAM_VENV)/.installed ## Benchmarks against the floor of the same work; writes tests/bench/RESULTS.md (ARGS=--quick)
	PYTHONPATH=tests $(PY) -m bench $(ARGS)
	PYTHONPATH=tests $(PY) -m figures

reliability: $(VENV)/.installed ## Fault-injection suite at volume + a 10,000-object backfill; writes tests/reliability/RESULTS.md (~25 min; ARGS=--quick, or --only backfill)
	PYTHONPATH=tests $(PY) -m reliability $(ARGS)
	PYTHONPATH=tests $(PY) -m figures

figures: $(VENV)/.installed ## Copy the results files' tables into the README (bench and reliability do it too)
	PYTHONPATH=tests $(PY) -m figures

emulator: $(VENV)/.installed ## Run the Wistia emulator alone on 127.0.0.1 (PORT=8089 TOKEN=local-token)
	$(PY) -m wistia_emulator --host 127.0.0.1 --port $(or $(PORT),8089) --token $(or $(TOKEN),local-token)

deploy: build ## Build and deploy to AWS (asks before changing anything; PARAMS='Key=Value ...')
	$(SAM) deploy $(SAM_STACK) $(if $(PARAMS),--parameter-overrides '$(PARAMS)')

outputs: $(SAM_VENV)/.installed ## Print the deployed stack's outputs (bucket, table, queue, dashboard URL, ...)
	$(SAM) list stack-outputs $(SAM_STACK) --output table

invoke: build ## sam local invoke, for machines with Docker: EVENT=events/s3-object-created.json [ENV_VARS=env.json]
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=events/<file>.json [ENV_VARS=env.json]" >&2; exit 2; }
	$(SAM) local invoke ImportFunction --event "$(EVENT)" \
		$(if $(ENV_VARS),--env-vars "$(ENV_VARS)") $(if $(PARAMS),--parameter-overrides '$(PARAMS)')

logs: $(SAM_VENV)/.installed ## Follow the deployed function's log (sam logs --tail; FILTER=text to search)
	$(SAM) logs --name ImportFunction --tail $(SAM_STACK) $(if $(FILTER),--filter '$(FILTER)')

delete: $(SAM_VENV)/.installed ## Delete the stack (sam delete; the records table and dead-letter queue are kept)
	$(SAM) delete $(SAM_STACK)

redrive: $(VENV)/.installed ## Resubmit the dead-letter queue once the cause is fixed: s3-to-wistia redrive (DRY_RUN=1, MAX=N, ARGS=...)
	$(BIN)/s3-to-wistia redrive \
		$(if $(STACK),--stack $(STACK)) $(if $(CONFIG_ENV),--config-env $(CONFIG_ENV)) $(if $(DRY_RUN),--dry-run) $(if $(MAX),--limit $(MAX)) $(ARGS)

cli: $(VENV)/.installed ## The operators' command line, s3-to-wistia: make cli ARGS='upload clip.mp4' (or .venv/bin/s3-to-wistia)
	@$(BIN)/s3-to-wistia $(ARGS)

clean: ## Remove virtualenvs, build output and caches
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
