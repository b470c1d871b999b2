# The two set-up commands (see README): `make up` and `make test`.
VENV ?= .venv
ARGS ?=

.PHONY: up test bootstrap bench clean-demo

up: bootstrap
	$(VENV)/bin/onsite up $(ARGS)

test: bootstrap
	scripts/test.sh $(ARGS)

bootstrap:
	scripts/bootstrap.sh

bench: bootstrap
	$(VENV)/bin/python -m bench $(ARGS)

clean-demo:
	rm -rf var
