"""Loading results files: a file from before the per-size copy limit keeps its figure under its true name."""
import json
from pathlib import Path

from sigbench.report import tables
from sigbench.results import files

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "example-cpu" / "results.json"


def test_an_old_files_fraction_of_the_out_of_cache_copy_is_moved_to_its_own_column():
    raw = json.loads(EXAMPLE.read_text())
    assert raw["schema_version"] == 2
    old = {(r["backend"], r["variant"], r["size"]): r for r in raw["rows"] if r["workload"] == "sigmoid"}
    assert all("copy_gbps_at_size" not in r for r in old.values())
    loaded = files.load(EXAMPLE)
    rows = [r for r in loaded["rows"] if r["workload"] == "sigmoid"]
    assert rows and any(r["out_of_cache_fraction"] for r in rows)
    for row in rows:
        before = old[(row["backend"], row["variant"], row["size"])]
        assert row["out_of_cache_fraction"] == before.get("bandwidth_fraction")
        assert row["bandwidth_fraction"] is None
    # a merged report shows the old file's figure as what it is, and no fraction of a per-size limit for it
    text = tables.markdown([loaded])
    assert "Fraction of the copy bandwidth out of cache" in text
    assert "Fraction of the copy bandwidth at each row's own array size" not in text
    assert all(r.get("bandwidth_fraction") is None for r in loaded["rows"] if r["workload"] == "train")


def test_a_new_files_rows_are_left_as_they_are(tmp_path):
    document = json.loads(EXAMPLE.read_text())
    for row in document["rows"]:
        if row["workload"] == "sigmoid" and row.get("bandwidth_fraction") is not None:
            row.update(copy_gbps_at_size=20.0, out_of_cache_fraction=0.5)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document))
    loaded = files.load(path)
    for before, after in zip(document["rows"], loaded["rows"]):
        assert after.get("bandwidth_fraction") == before.get("bandwidth_fraction")
        assert after.get("out_of_cache_fraction") == before.get("out_of_cache_fraction")
