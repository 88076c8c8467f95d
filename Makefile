# The whole developer workflow. `make run` brings the local stack up; `make test` installs what it
# needs and runs every test against it.

SHELL := /bin/bash
VENV  := .venv
MOTO  := $(VENV)/bin/moto_server
PY    := $(VENV)/bin/python

.PHONY: run test lint unit bench build events items venv clean help

help:
	@echo "make run    - the local stack: gateway on :3000, embedded DynamoDB, moto SQS, simulator"
	@echo "make test   - lint, unit, handler and whole-flow tests (installs moto into .venv first)"
	@echo "make bench  - costs: DynamoDB requests per event, CPU per event"
	@echo "make build  - debug build of every binary"
	@echo "make events - re-sign the sample webhook events in events/"
	@echo "make items  - print what the running local stack has stored"

venv: $(MOTO)

$(MOTO): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(MOTO)

build:
	cargo build --workspace --locked

run: venv
	cargo build --locked --workspace --bins
	bash tools/local/run.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit:
	cargo test --workspace --locked --lib

test: venv lint
	mkdir -p target
	set -o pipefail; cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' target/test-output.log

bench: venv
	cargo bench --locked -p integration-tests --bench costs

events:
	python3 tools/events/sign.py events

items: venv
	$(PY) tools/local/items.py

clean:
	cargo clean
	rm -rf $(VENV) .local
