"""Routing statistics of the GQE runs, from the committed logs (logs/<variant>-seed<n>.jsonl).

Per run: churn = mean over layers and consecutive evaluations of |change in expert 0's share| (the routing
statistics every eval writes to log.jsonl; M = 2 experts, so one share says it all); the mean gate entropy
per layer at the last eval (nats; uniform over 2 = 0.693); the largest gradient norm after update 50; the
mean balance loss over the last 50 updates. Printed as mean ± sample std over seeds.
Run: python3 routing_stability.py (from this folder).
"""
import glob
import json
import os
import statistics as st

here = os.path.dirname(os.path.abspath(__file__))


def fmt(xs):
    return f"{st.mean(xs):.3f} ± {st.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


print("| variant | seeds | routing churn | final gate entropy | max grad norm (after 50) | balance loss (last 50) |")
print("|---|---:|---:|---:|---:|---:|")
for v in ["gqe", "gqe-hard-only", "gqe-no-renorm", "gqe-no-shared"]:
    churn, ent, gmax, bal = [], [], [], []
    for path in sorted(glob.glob(os.path.join(here, "logs", f"{v}-seed*.jsonl"))):
        recs = [json.loads(line) for line in open(path)]
        evals = [r for r in recs if "routing" in r]
        shares = [r["routing"]["share"] for r in evals]
        layers = len(shares[0])
        churn.append(st.mean(abs(shares[i][l][0] - shares[i - 1][l][0]) for i in range(1, len(shares)) for l in range(layers)))
        ent.append(st.mean(evals[-1]["routing"]["entropy"]))
        gmax.append(max(r["grad_norm"] for r in recs if r["step"] > 50))
        bal.append(st.mean(r["balance"] for r in recs[-50:]))
    print(f"| {v} | {len(churn)} | {fmt(churn)} | {fmt(ent)} | {fmt(gmax)} | {fmt(bal)} |")
