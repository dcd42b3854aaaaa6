"""gptablate: train GPT-2 variants under one budget and rank them on a leaderboard."""

__version__ = "0.1.0"
