"""Reference model for sample-024-truckload-shipping: pallets moved in whole trucks (MILP)."""

import pulp

depots = ["North", "South"]
customers = ["K1", "K2", "K3"]
stock = {"North": 70, "South": 60}  # pallets
demand = {"K1": 40, "K2": 35, "K3": 45}  # pallets
truck_capacity = 18  # pallets per truck
trip_cost = {  # $ per truck trip, whatever its load
    "North": {"K1": 300, "K2": 420, "K3": 560},
    "South": {"K1": 500, "K2": 380, "K3": 310},
}

prob = pulp.LpProblem("truckload_shipping", pulp.LpMinimize)
pallets = pulp.LpVariable.dicts("pallets", (depots, customers), lowBound=0, cat="Integer")
trucks = pulp.LpVariable.dicts("trucks", (depots, customers), lowBound=0, cat="Integer")

prob += pulp.lpSum(trip_cost[d][k] * trucks[d][k] for d in depots for k in customers)
for d in depots:
    prob += pulp.lpSum(pallets[d][k] for k in customers) <= stock[d], f"stock_{d}"
for k in customers:
    prob += pulp.lpSum(pallets[d][k] for d in depots) == demand[k], f"demand_{k}"
for d in depots:
    for k in customers:
        prob += pallets[d][k] <= truck_capacity * trucks[d][k], f"trucks_{d}_{k}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
