"""Reference model for sample-010-facility-location: capacitated fixed-charge warehouses (MILP)."""

import pulp

warehouses = ["W1", "W2", "W3", "W4"]
customers = ["C1", "C2", "C3", "C4", "C5"]
fixed_cost = {"W1": 45000, "W2": 52000, "W3": 38000, "W4": 60000}  # $ per year if open
capacity = {"W1": 600, "W2": 750, "W3": 500, "W4": 900}  # units per year
demand = {"C1": 300, "C2": 250, "C3": 400, "C4": 200, "C5": 350}
unit_cost = {  # $ per unit shipped
    "W1": {"C1": 12, "C2": 18, "C3": 25, "C4": 30, "C5": 22},
    "W2": {"C1": 20, "C2": 10, "C3": 15, "C4": 28, "C5": 26},
    "W3": {"C1": 28, "C2": 24, "C3": 10, "C4": 14, "C5": 30},
    "W4": {"C1": 24, "C2": 26, "C3": 20, "C4": 12, "C5": 9},
}

prob = pulp.LpProblem("facility_location", pulp.LpMinimize)
is_open = pulp.LpVariable.dicts("open", warehouses, cat="Binary")
ship = pulp.LpVariable.dicts("ship", (warehouses, customers), lowBound=0)

prob += pulp.lpSum(fixed_cost[w] * is_open[w] for w in warehouses) + pulp.lpSum(
    unit_cost[w][c] * ship[w][c] for w in warehouses for c in customers
)
for c in customers:
    prob += pulp.lpSum(ship[w][c] for w in warehouses) == demand[c], f"demand_{c}"
for w in warehouses:
    prob += pulp.lpSum(ship[w][c] for c in customers) <= capacity[w] * is_open[w], f"cap_{w}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
