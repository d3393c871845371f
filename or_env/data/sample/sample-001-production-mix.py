"""Reference model for sample-001-production-mix: brewery product mix (LP)."""

import pulp

beers = ["lager", "pale_ale", "stout"]
profit = {"lager": 40, "pale_ale": 55, "stout": 70}  # $ per hl
usage = {  # resource use per hl brewed
    "malt": {"lager": 20, "pale_ale": 25, "stout": 35},
    "hops": {"lager": 1, "pale_ale": 2, "stout": 1.5},
    "hours": {"lager": 2, "pale_ale": 3, "stout": 4},
}
available = {"malt": 5000, "hops": 350, "hours": 900}
max_stout = 80

prob = pulp.LpProblem("brewery_product_mix", pulp.LpMaximize)
hl = pulp.LpVariable.dicts("hl", beers, lowBound=0)

prob += pulp.lpSum(profit[b] * hl[b] for b in beers)
for resource, per_hl in usage.items():
    prob += pulp.lpSum(per_hl[b] * hl[b] for b in beers) <= available[resource], resource
prob += hl["stout"] <= max_stout, "stout_demand"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
