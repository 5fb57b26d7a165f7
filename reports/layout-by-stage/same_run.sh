#!/bin/bash
# the same quick run on the code before the layout (/work/before) and after (/work/layout)
set -e
for side in before layout; do
  rm -rf /work/verify/run-$side
  (cd /work/$side && PYTHONPATH=/work/$side:/work/$side/backends timeout 900 /work/venv/bin/python -m sigbench run --quick --seed 7 -o /work/verify/run-$side -q) > /work/verify/run-$side.log 2>&1 || echo "$side exit $?" >> /work/verify/run-$side.log
done
/work/venv/bin/python - <<'PY'
import json, os
sides = {}
for side in ("before", "layout"):
    d = f"/work/verify/run-{side}"
    doc = json.load(open(f"{d}/results.json"))
    files = sorted(os.listdir(d))
    keys = ("workload", "backend", "variant", "dtype", "device", "size", "batch", "hidden")
    checks = {tuple(r.get(k) for k in keys): (r.get("status"), r.get("check_passed"), r.get("max_ulp"), r.get("max_abs_err"), r.get("check")) for r in doc["rows"]}
    sides[side] = (files, checks, doc["status"])
(fb, cb, sb), (fa, ca, sa) = sides["before"], sides["layout"]
print("status", sb, sa)
print("files equal:", fb == fa, sorted(set(fb) ^ set(fa)))
print("cases equal:", set(cb) == set(ca), len(cb), len(ca), sorted(set(cb) ^ set(ca))[:5])
diff = [k for k in cb if k in ca and cb[k] != ca[k]]
print("checks differing:", len(diff))
for k in diff[:10]:
    print(" ", k, cb[k], ca[k])
PY
