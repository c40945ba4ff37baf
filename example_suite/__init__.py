"""The example chaos suite of pytest-chaos: a small real shop and the experiments run on it."""
