# The two commands of the README, plus the checks CI runs.
SAMPLE := src/invoicegen/samples/sample_invoice.pdf
BIN := .venv/bin

.PHONY: setup demo test lint check

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/invoicegen extract $(SAMPLE)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

check: lint test
