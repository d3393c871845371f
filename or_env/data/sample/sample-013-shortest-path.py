"""Reference model for sample-013-shortest-path: shortest road route as a unit flow (LP)."""

import pulp

towns = list("ABCDEFGHI")
roads = {  # two-way roads, km
    ("A", "B"): 7,
    ("A", "C"): 9,
    ("A", "D"): 14,
    ("B", "C"): 10,
    ("B", "E"): 15,
    ("C", "D"): 2,
    ("C", "F"): 11,
    ("D", "G"): 9,
    ("E", "F"): 6,
    ("E", "H"): 8,
    ("F", "H"): 9,
    ("F", "I"): 16,
    ("G", "H"): 7,
    ("G", "I"): 18,
    ("H", "I"): 5,
}
start, end = "A", "I"
# Each road can be driven in either direction.
arcs = {**roads, **{(v, u): km for (u, v), km in roads.items()}}

prob = pulp.LpProblem("shortest_path", pulp.LpMinimize)
use = {a: pulp.LpVariable(f"use_{a[0]}_{a[1]}", lowBound=0) for a in arcs}

prob += pulp.lpSum(km * use[a] for a, km in arcs.items())
for t in towns:
    net_out = pulp.lpSum(use[a] for a in arcs if a[0] == t) - pulp.lpSum(
        use[a] for a in arcs if a[1] == t
    )
    prob += net_out == (1 if t == start else -1 if t == end else 0), f"flow_{t}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
