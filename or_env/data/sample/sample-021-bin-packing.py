"""Reference model for sample-021-bin-packing: parcels into the fewest vans (IP)."""

import pulp

parcels = {  # parcel: weight in kg
    "p1": 68,
    "p2": 67,
    "p3": 64,
    "p4": 64,
    "p5": 61,
    "p6": 60,
    "p7": 57,
    "p8": 43,
    "p9": 24,
    "p10": 24,
    "p11": 22,
    "p12": 22,
}
van_capacity = 120  # kg
vans = range(len(parcels))  # one van per parcel always suffices

prob = pulp.LpProblem("bin_packing", pulp.LpMinimize)
used = pulp.LpVariable.dicts("used", vans, cat="Binary")
load = pulp.LpVariable.dicts("load", (parcels, vans), cat="Binary")

prob += pulp.lpSum(used[v] for v in vans)
for p in parcels:
    prob += pulp.lpSum(load[p][v] for v in vans) == 1, f"place_{p}"
for v in vans:
    prob += (
        pulp.lpSum(parcels[p] * load[p][v] for p in parcels) <= van_capacity * used[v],
        f"cap_{v}",
    )
    # Symmetry breaking: open vans in order, which keeps the search small.
    if v > 0:
        prob += used[v] <= used[v - 1], f"order_{v}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
