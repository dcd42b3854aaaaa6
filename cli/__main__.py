"""`python -m gptablate_cli ...` is the same as `gptablate ...`."""

from .main import main

main()
