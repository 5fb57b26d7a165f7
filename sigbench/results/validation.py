"""What a results file may hold, as a JSON Schema, and the check that every reader runs before using one.

The schema is built here from the columns ``schema`` defines, so it cannot drift from what a run writes;
``sigbench/results/schemas/results.schema.json`` is the same schema as a file, for other tools (a test holds the
two equal; ``python -m sigbench.results.validation`` rewrites the file). A file that breaks it raises
``ResultsFileError`` naming the file, the row and the field; the command line turns that into exit 2.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from sigbench.core import version
from sigbench.core.errors import ResultsFileError
from sigbench.results.schema import COLUMNS, KEY_COLUMNS

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "results.schema.json"

#: Seconds that a timed row must give: finite and not negative.
REQUIRED_TIMES: tuple[str, ...] = ("min_s", "median_s", "ci_low_s", "ci_high_s")
#: A number, or where a run found none, null; infinities are written as the strings "inf" / "-inf".
NUMBER: dict[str, Any] = {"anyOf": [{"type": ["number", "null"]}, {"enum": ["inf", "-inf"]}]}
SECONDS: dict[str, Any] = {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0}]}
COUNT: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0}
TEXT: dict[str, Any] = {"type": ["string", "null"]}

#: The type of each column; a column not named here is a number (``NUMBER``).
COLUMN_TYPES: dict[str, dict[str, Any]] = {
    "workload": {"enum": ["sigmoid", "train"]},
    "backend": {"type": "string", "minLength": 1},
    "variant": {"type": "string", "minLength": 1},
    "device": {"type": "string", "minLength": 1},
    "dtype": {"type": "string", "minLength": 1},
    "size": {"type": ["integer", "null"], "minimum": 0},  # null: a fleet host's row for a backend it lacks
    "hidden": {"type": ["integer", "null"], "minimum": 1},
    "batch": {"type": ["integer", "null"], "minimum": 1},
    "status": {"enum": ["ok", "error", "skipped"]},
    "check_passed": {"type": ["boolean", "null"]},
    "error_unit": {"enum": ["ulp", "abs", None]},
    "flushed_subnormals": COUNT, "warnings": COUNT, "samples": COUNT, "outliers": COUNT, "processes": COUNT,
    "loops_per_sample": COUNT, "peak_host_bytes": COUNT, "peak_device_bytes": COUNT, "seed": COUNT,
    "threads": COUNT,
    "unstable": {"type": ["boolean", "null"]},
    "ci_level": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "machine": TEXT, "message": TEXT, "code_path": TEXT,
    "reference_ratio": {"type": ["number", "null"], "minimum": 0},
    **{column: SECONDS for column in COLUMNS if column.endswith("_s")},
}


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json at this sigbench's ``SCHEMA_VERSION``."""

    columns = {column: COLUMN_TYPES.get(column, NUMBER) for column in COLUMNS}
    columns["process_samples_s"] = {"type": "array", "items": {"type": "array",
                                                               "items": {"type": "number", "minimum": 0}}}
    columns["process_first_call_s"] = {"type": "array", "items": {"type": "number", "minimum": 0}}
    timed = {"properties": {"size": {"type": "integer", "minimum": 0},
                            **{column: {"type": "number", "minimum": 0} for column in REQUIRED_TIMES}},
             "required": list(REQUIRED_TIMES)}
    # a training case with a size has its hidden width (the reports title its tables by it); only a fleet
    # host's row for a backend it lacks has neither
    trained = {"if": {"properties": {"workload": {"const": "train"}, "size": {"type": "integer"}},
                      "required": ["workload", "size"]},
               "then": {"properties": {"hidden": {"type": "integer", "minimum": 1}}, "required": ["hidden"]}}
    row = {"type": "object", "properties": columns, "required": list(KEY_COLUMNS) + ["status"],
           "allOf": [{"if": {"properties": {"status": {"const": "ok"}}}, "then": timed}, trained]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://sigbench.invalid/results.schema.json",
        "title": f"sigbench results.json, schema_version {version.SCHEMA_VERSION}",
        "description": "One row per case: what identifies it (workload ... hidden), its status, its numerics "
                       "check and what it cost. Times are seconds per call; a timed row (status ok) gives "
                       f"{', '.join(REQUIRED_TIMES)} as finite numbers of at least 0.",
        "type": "object",
        "required": ["schema_version", "rows"],
        "properties": {"schema_version": {"const": version.SCHEMA_VERSION}, "sigbench_version": TEXT,
                       "status": {"enum": ["running", "complete", "interrupted", "failed"]},
                       "metadata": {"type": "object"}, "rows": {"type": "array", "items": row}},
    }


def ab_schema() -> dict[str, Any]:
    """The JSON Schema of ab-results.json (``sigbench ab``), at its own schema version."""

    process = {"type": "object", "required": ["median_s", "p10_s"],
               "properties": {"median_s": {"type": "number", "exclusiveMinimum": 0},
                              "p10_s": {"type": "number", "exclusiveMinimum": 0}}}
    ratio = {"type": ["number", "null"], "minimum": 0}
    row = {"type": "object", "required": ["workload", "backend", "variant", "size", "status", "verdict"],
           "properties": {**{c: COLUMN_TYPES[c] for c in KEY_COLUMNS},
                          "verdict": {"enum": ["slower", "faster", "same", "undecided", "error", "skipped"]},
                          "ratio": ratio, "ci_low": ratio, "ci_high": ratio, "rounds": COUNT, "message": TEXT,
                          "per_round": {"type": "array", "items": {"type": "object", "required": ["a", "b"],
                                                                    "properties": {"a": process, "b": process}}}}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "sigbench ab-results.json",
            "type": "object", "required": ["kind", "schema_version", "rows"],
            "properties": {"kind": {"const": "ab"}, "schema_version": {"const": version.AB_SCHEMA_VERSION},
                           "metadata": {"type": "object"}, "rounds": {"type": "array"},
                           "rows": {"type": "array", "items": row}}}


@lru_cache(maxsize=2)
def validator(kind: str = "results") -> Any:
    import jsonschema

    schema = results_schema() if kind == "results" else ab_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def nan_as_text(value: Any) -> Any:
    """NaN and infinite floats (which Python's json reads from ``NaN`` / ``Infinity``) as the text they
    were, so that the schema's number types reject them where a number is needed and name the field."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: nan_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_as_text(v) for v in value]
    return value


def check_results(document: dict[str, Any], path: Path, kind: str = "results") -> None:
    """Raise ``ResultsFileError`` naming the file, the row and the field of the first thing wrong.

    ``kind``: ``results`` (results.json) or ``ab`` (ab-results.json)."""
    if kind == "results" and document.get("schema_version") != _current_version():
        raise ResultsFileError(path, f"results schema version {document.get('schema_version')!r}, this sigbench "
                                     f"reads version {_current_version()}; rerun the benchmark with this sigbench")
    errors = sorted(validator(kind).iter_errors(nan_as_text(document)), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    error = errors[0]
    where = list(error.absolute_path)
    if len(where) >= 2 and where[0] == "rows":
        row = document["rows"][where[1]]
        case = ", ".join(f"{k} {row.get(k)}" for k in ("workload", "backend", "variant", "size")
                         if isinstance(row, dict) and k in row)
        if error.validator == "required":
            field, message = error.message.split("'")[1], "missing"
        else:
            field, message = ".".join(str(p) for p in where[2:]) or "(the row itself)", error.message
        raise ResultsFileError(path, f"row {where[1]} ({case or 'no case'}), field {field}: {message}")
    raise ResultsFileError(path, f"{'.'.join(str(p) for p in where) or 'the file'}: {error.message}")


def _current_version() -> int:

    return version.SCHEMA_VERSION


def main() -> int:
    """``python -m sigbench.results.validation``: rewrite the schema file from the code."""
    SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_FILE.write_text(json.dumps(results_schema(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
