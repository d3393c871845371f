"""Reference model for sample-003-integer-knapsack: container loading, any number of crates (IP)."""

import pulp

crate_types = ["A", "B", "C", "D", "E"]
weight = {"A": 120, "B": 75, "C": 200, "D": 50, "E": 160}  # kg
volume = {"A": 1.5, "B": 2.0, "C": 1.0, "D": 0.8, "E": 2.5}  # m^3
value = {"A": 800, "B": 620, "C": 1150, "D": 330, "E": 1050}  # $
max_weight, max_volume = 1000, 10

prob = pulp.LpProblem("integer_knapsack", pulp.LpMaximize)
n = pulp.LpVariable.dicts("crates", crate_types, lowBound=0, cat="Integer")

prob += pulp.lpSum(value[c] * n[c] for c in crate_types)
prob += pulp.lpSum(weight[c] * n[c] for c in crate_types) <= max_weight, "weight"
prob += pulp.lpSum(volume[c] * n[c] for c in crate_types) <= max_volume, "volume"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
