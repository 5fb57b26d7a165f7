"""The versions sigbench writes into its files: its own, and each results file's schema."""

__version__ = "0.2.0"

#: Version of the results files (CSV/JSON) this sigbench writes and reads.
SCHEMA_VERSION = 2

#: Version of ab-results.json.
AB_SCHEMA_VERSION = 1
