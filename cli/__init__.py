"""The gptablate command line (installed as the `gptablate_cli` package). Parsing and rendering only."""
