# The project's entry points. `make up` and `make test` install what they need themselves
# (tools/install.sh is idempotent and caches builds by version outside the clone).
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install up down status smoke test lint format loadtest failover bench cluster-up cluster-down cluster-status images

help:
	@echo "make up        install, start the local platform, provision it, smoke-check it"
	@echo "make down      stop every process of the local platform"
	@echo "make status    one JSON object: each service's endpoints and health (-s for JSON only)"
	@echo "make test      install, lint, and run every test (what CI runs)"
	@echo "make failover  run the failover drills against the running platform"
	@echo "make loadtest  Locust against the running platform with SLO thresholds (PROFILE=short|full)"
	@echo "make cluster-up    a real Kubernetes control plane + kwok nodes of STACK (dev) + ArgoCD syncing it"
	@echo "                   (dev, after make up: a real kubelet node running the app's pods)"
	@echo "make cluster-down  stop every process of the local cluster"
	@echo "make images    build the bases, the API, ingest and worker images (cached by input hash); record the digests in STACK (dev)"

install:
	@tools/install.sh

# APP=containers: the API, the worker and the ingest run from their built images, as the dev chart runs them.
ifdef APP
export ITS_APP_RUNTIME := $(APP)
endif
up: install
	@$(PY) -m infra.local up

down:
	@if [ -x $(PY) ]; then $(PY) -m infra.local down; else echo "nothing installed, nothing running"; fi

status:
	@$(PY) -m infra.status

STACK ?= dev
export STACK
cluster-up: install
	@$(PY) -m infra.cluster up

cluster-down:
	@if [ -x $(PY) ]; then $(PY) -m infra.cluster down; else echo "nothing installed, nothing running"; fi

cluster-status:
	@$(PY) -m infra.cluster status

# The images (tools/images/images.yaml), built with podman on the project's own Debian bases;
# each one's size and digest printed, the digests written into STACK's GitOps values.
images: install
	@$(PY) -m infra.images build --record $(STACK)

smoke:
	@$(PY) -m infra.local smoke

PROFILE ?= short
loadtest:
	@$(PY) -m loadtests.slo --profile $(PROFILE)

# TARGET=cluster runs the same faults on the cluster of KUBECONFIG (pod deletion, timed).
TARGET ?= local
failover:
	@$(PY) -m loadtests.failover --target $(TARGET)

lint:
	@echo "==> [lint] ruff check, ruff format --check, mypy"
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy app infra tests loadtests

format:
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

test: install lint
	@echo "==> [test] pytest (starts its own platform on ports from 29000 under a temporary state dir)"
	@$(PY) -m pytest
