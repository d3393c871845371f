"""Reference model for sample-019-infeasible-blend: fertilizer specs no mix can meet (LP)."""

import pulp

materials = ["A", "B", "C"]
cost = {"A": 310, "B": 270, "C": 240}  # $ per tonne
nitrogen = {"A": 0.40, "B": 0.10, "C": 0.20}  # share of mass
phosphate = {"A": 0.05, "B": 0.30, "C": 0.20}  # share of mass
batch = 50  # tonnes

prob = pulp.LpProblem("fertilizer_blend", pulp.LpMinimize)
tonnes = pulp.LpVariable.dicts("tonnes", materials, lowBound=0)

prob += pulp.lpSum(cost[m] * tonnes[m] for m in materials)
prob += pulp.lpSum(tonnes[m] for m in materials) == batch, "batch_size"
prob += pulp.lpSum(nitrogen[m] * tonnes[m] for m in materials) >= 0.25 * batch, "min_nitrogen"
prob += pulp.lpSum(phosphate[m] * tonnes[m] for m in materials) >= 0.20 * batch, "min_phosphate"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
