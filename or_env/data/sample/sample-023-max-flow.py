"""Reference model for sample-023-max-flow: evacuation road capacity (max-flow LP)."""

import pulp

nodes = ["Town", "A", "B", "C", "D", "E", "Shelter"]
capacity = {  # one-way roads, vehicles per hour
    ("Town", "A"): 900,
    ("Town", "B"): 700,
    ("Town", "C"): 500,
    ("A", "B"): 200,
    ("A", "D"): 600,
    ("B", "D"): 300,
    ("B", "E"): 450,
    ("C", "E"): 400,
    ("D", "Shelter"): 800,
    ("E", "D"): 150,
    ("E", "Shelter"): 650,
}
source, sink = "Town", "Shelter"

prob = pulp.LpProblem("max_flow", pulp.LpMaximize)
flow = {
    a: pulp.LpVariable(f"flow_{a[0]}_{a[1]}", lowBound=0, upBound=cap)
    for a, cap in capacity.items()
}

prob += pulp.lpSum(flow[a] for a in capacity if a[0] == source)
for n in nodes:
    if n not in (source, sink):
        inflow = pulp.lpSum(flow[a] for a in capacity if a[1] == n)
        outflow = pulp.lpSum(flow[a] for a in capacity if a[0] == n)
        prob += inflow == outflow, f"conserve_{n}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
