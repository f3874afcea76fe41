# The two commands in the README: `make run` and `make test`.
.PHONY: setup run test check lint typecheck clean

setup:
	./scripts/setup

run: setup
	.venv/bin/dothi up

check: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: check
	.venv/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
