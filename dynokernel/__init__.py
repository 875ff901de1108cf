"""dynokernel: Heroku-style one-off dynos in Jupyter."""

__version__ = "0.1.0"
