"""Reference model for sample-008-multi-period-production: quarterly plan with stock (LP)."""

import pulp

quarters = [1, 2, 3, 4]
demand = {1: 700, 2: 1100, 3: 1500, 4: 900}
regular_cap, overtime_cap = 1000, 300
regular_cost, overtime_cost, holding_cost = 50, 65, 4  # $ per unit (holding: per quarter)
initial_stock, final_stock_min = 100, 150

prob = pulp.LpProblem("multi_period_production", pulp.LpMinimize)
regular = pulp.LpVariable.dicts("regular", quarters, lowBound=0, upBound=regular_cap)
overtime = pulp.LpVariable.dicts("overtime", quarters, lowBound=0, upBound=overtime_cap)
stock = pulp.LpVariable.dicts("stock", quarters, lowBound=0)  # end-of-quarter inventory

prob += pulp.lpSum(
    regular_cost * regular[q] + overtime_cost * overtime[q] + holding_cost * stock[q]
    for q in quarters
)
for q in quarters:
    previous = initial_stock if q == 1 else stock[q - 1]
    prob += previous + regular[q] + overtime[q] - demand[q] == stock[q], f"balance_{q}"
prob += stock[4] >= final_stock_min, "final_stock"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
