"""Reference model for sample-002-setup-costs: product mix with line setup costs (MILP)."""

import pulp

products = ["bracket", "hinge", "clamp"]
profit = {"bracket": 12, "hinge": 9, "clamp": 15}  # $ per unit before setup
setup_cost = {"bracket": 400, "hinge": 300, "clamp": 500}  # $ per week if the line runs
max_demand = {"bracket": 100, "hinge": 120, "clamp": 60}
machine_h = {"bracket": 3, "hinge": 2, "clamp": 4}
labour_h = {"bracket": 2, "hinge": 1, "clamp": 3}
machine_cap, labour_cap = 400, 250

prob = pulp.LpProblem("setup_costs", pulp.LpMaximize)
units = pulp.LpVariable.dicts("units", products, lowBound=0, cat="Integer")
runs = pulp.LpVariable.dicts("runs", products, cat="Binary")

prob += pulp.lpSum(profit[p] * units[p] - setup_cost[p] * runs[p] for p in products)
prob += pulp.lpSum(machine_h[p] * units[p] for p in products) <= machine_cap, "machine"
prob += pulp.lpSum(labour_h[p] * units[p] for p in products) <= labour_cap, "labour"
for p in products:
    # Demand caps double as the big-M: no units without a setup.
    prob += units[p] <= max_demand[p] * runs[p], f"setup_{p}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
