"""Evaluation reports: metrics on factory datasets and real documents, plots, error analysis.

``invoicegen evaluate`` drives it (see ``report.py``); ``realscore`` is our own implementation of
the real-data scoring rules, kept in agreement with ``../shared/realdata/score.py`` by tests."""
