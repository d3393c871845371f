"""Reference model for sample-017-zero-overtime: build-ahead plan that needs no overtime (LP)."""

import pulp

weeks = [1, 2, 3, 4]
demand = {1: 120, 2: 150, 3: 190, 4: 180}
regular_cap, overtime_cap, storage_cap = 160, 50, 50  # units per week / units held

prob = pulp.LpProblem("zero_overtime", pulp.LpMinimize)
regular = pulp.LpVariable.dicts("regular", weeks, lowBound=0, upBound=regular_cap)
overtime = pulp.LpVariable.dicts("overtime", weeks, lowBound=0, upBound=overtime_cap)
stock = pulp.LpVariable.dicts("stock", weeks, lowBound=0, upBound=storage_cap)  # end of week

prob += pulp.lpSum(overtime[w] for w in weeks)
for w in weeks:
    previous = 0 if w == 1 else stock[w - 1]
    prob += previous + regular[w] + overtime[w] - demand[w] == stock[w], f"balance_{w}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
