"""Reference model for sample-004-binary-knapsack: capital budgeting, each project once (0/1)."""

import pulp

projects = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"]
cost = dict(zip(projects, [220, 150, 310, 90, 180, 260, 120, 200], strict=True))  # $k
npv = dict(zip(projects, [410, 260, 540, 150, 330, 430, 200, 360], strict=True))  # $k
budget = 900

prob = pulp.LpProblem("capital_budgeting", pulp.LpMaximize)
pick = pulp.LpVariable.dicts("fund", projects, cat="Binary")

prob += pulp.lpSum(npv[p] * pick[p] for p in projects)
prob += pulp.lpSum(cost[p] * pick[p] for p in projects) <= budget, "budget"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
