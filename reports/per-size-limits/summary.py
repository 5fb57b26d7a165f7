"""The figures of reports/per-size-limits/README.md, from its results.json."""
import json
import sys
from collections import defaultdict
from pathlib import Path

folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent)
document = json.loads((folder / "results.json").read_text())
meta = document["metadata"]
bandwidth = meta["bandwidth"]
print(f"cpu: {meta['cpu']}; caches: {meta['cache_bytes']}; time: {meta['time_utc']}; preset {meta['preset']}")
print(f"per-size copies took {bandwidth['by_size_s']:.2f} s")
print("out of cache:", ", ".join(f"{k} {v:.1f}" for k, v in bandwidth.items() if k.startswith("copy_gbps")))
first = next(iter(bandwidth["by_size"].values()))
names = [k.removeprefix("copy_gbps_") for k in first if k.startswith("copy_gbps_")]
print("\n| array (n float32) | best copy GB/s | by | median of that copy | " + " | ".join(names) + " |")
print("|---|---|---|---|---|---|---|")
for nbytes, entry in bandwidth["by_size"].items():
    n = int(nbytes) // 4
    others = " | ".join(f"{v:.1f}" for k, v in entry.items() if k.startswith("copy_gbps_"))
    print(f"| 2^{n.bit_length() - 1} ({int(nbytes) // 1024:,} KiB) | {entry['copy_gbps']:.1f} | {entry['backend']} | "
          f"{entry['median_gbps']:.1f} | {others} |")
rows = [r for r in document["rows"] if r["status"] == "ok" and r["workload"] == "sigmoid"]
by = defaultdict(list)
for row in rows:
    by[(row["backend"], row["variant"])].append(row)
print("\n| backend/variant | largest bandwidth_fraction (at n) | largest out_of_cache_fraction (at n) |")
print("|---|---|---|")
for (backend, variant), group in by.items():
    a = max(group, key=lambda r: r["bandwidth_fraction"])
    b = max(group, key=lambda r: r["out_of_cache_fraction"])
    print(f"| {backend}/{variant} | {a['bandwidth_fraction']:.2f} (2^{a['size'].bit_length() - 1}) | "
          f"{b['out_of_cache_fraction']:.2f} (2^{b['size'].bit_length() - 1}) |")
print("\ntorch/builtin:")
print("| n | GB/s | copy at its size | bandwidth_fraction | out_of_cache_fraction | ci_high/median | process_cv |")
print("|---|---|---|---|---|---|---|")
for r in sorted(by[("torch", "builtin")], key=lambda r: r["size"]):
    print(f"| 2^{r['size'].bit_length() - 1} | {r['gbps']:.1f} | {r['copy_gbps_at_size']:.1f} | "
          f"{r['bandwidth_fraction']:.2f} | {r['out_of_cache_fraction']:.2f} | "
          f"{r['ci_high_s'] / r['median_s']:.2f} | {r['process_cv']:.2f} |")
over = [r for r in rows if r["bandwidth_fraction"] > 1]
allowed = [round(r["ci_high_s"] / r["median_s"] * (1 + (r["process_cv"] or 0)) * 1.01, 3) for r in over]
print("\nrows over 1.0 (with the most their noise allows):",
      [(r["backend"], r["variant"], r["size"], round(r["bandwidth_fraction"], 3), a) for r, a in zip(over, allowed)])
unstable = sum(1 for r in rows if r["unstable"])
print(f"unstable rows: {unstable} of {len(rows)}")
