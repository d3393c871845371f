"""Reference model for sample-012-min-cost-flow: factories to stores through hubs (LP)."""

import pulp

# Net supply: positive at factories, negative (demand) at stores, zero at hubs.
net_supply = {"F1": 80, "F2": 70, "H1": 0, "H2": 0, "S1": -50, "S2": -60, "S3": -40}
arcs = {  # (from, to): ($ per unit, capacity in units)
    ("F1", "H1"): (4, 60),
    ("F1", "H2"): (6, 50),
    ("F2", "H1"): (5, 40),
    ("F2", "H2"): (3, 60),
    ("H1", "H2"): (1, 30),
    ("H1", "S1"): (7, 50),
    ("H1", "S2"): (9, 40),
    ("H2", "S2"): (6, 45),
    ("H2", "S3"): (8, 50),
    ("F1", "S1"): (12, 20),
}

prob = pulp.LpProblem("min_cost_flow", pulp.LpMinimize)
flow = {
    a: pulp.LpVariable(f"flow_{a[0]}_{a[1]}", lowBound=0, upBound=cap)
    for a, (_, cap) in arcs.items()
}

prob += pulp.lpSum(cost * flow[a] for a, (cost, _) in arcs.items())
for node, supply in net_supply.items():
    outflow = pulp.lpSum(flow[a] for a in arcs if a[0] == node)
    inflow = pulp.lpSum(flow[a] for a in arcs if a[1] == node)
    prob += outflow - inflow == supply, f"balance_{node}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
