# The set-up commands (see README): `make up`, `make test` (everything, as CI runs it) and
# `make check` (the inner loop: lint, import contracts, the tests that need no service).
VENV ?= .venv
ARGS ?=

.PHONY: up test check bootstrap bench clean-demo

up: bootstrap
	$(VENV)/bin/onsite up $(ARGS)

test: bootstrap
	scripts/test.sh $(ARGS)

check: bootstrap
	scripts/check.sh $(ARGS)

bootstrap:
	scripts/bootstrap.sh

bench: bootstrap
	$(VENV)/bin/python -m bench $(ARGS)

clean-demo:
	rm -rf var
