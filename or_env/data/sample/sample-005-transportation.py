"""Reference model for sample-005-transportation: plants to distribution centres (LP)."""

import pulp

plants = ["P1", "P2", "P3"]
centres = ["D1", "D2", "D3", "D4"]
supply = {"P1": 300, "P2": 400, "P3": 350}
demand = {"D1": 250, "D2": 200, "D3": 300, "D4": 220}
unit_cost = {  # $ per unit shipped
    "P1": {"D1": 8, "D2": 6, "D3": 10, "D4": 9},
    "P2": {"D1": 9, "D2": 12, "D3": 13, "D4": 7},
    "P3": {"D1": 14, "D2": 9, "D3": 16, "D4": 5},
}

prob = pulp.LpProblem("transportation", pulp.LpMinimize)
ship = pulp.LpVariable.dicts("ship", (plants, centres), lowBound=0)

prob += pulp.lpSum(unit_cost[p][d] * ship[p][d] for p in plants for d in centres)
for p in plants:
    prob += pulp.lpSum(ship[p][d] for d in centres) <= supply[p], f"supply_{p}"
for d in centres:
    prob += pulp.lpSum(ship[p][d] for p in plants) == demand[d], f"demand_{d}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
