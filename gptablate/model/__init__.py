"""The GPT-2 model and its pluggable parts (norms, block layouts, residual strategies)."""
