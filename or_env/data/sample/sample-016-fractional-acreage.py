"""Reference model for sample-016-fractional-acreage: crop plan with a fractional optimum (LP)."""

import pulp

crops = ["wheat", "corn", "soybeans"]
profit = {"wheat": 225, "corn": 310, "soybeans": 260}  # $ per acre
labour = {"wheat": 3.5, "corn": 5, "soybeans": 4.5}  # hours per acre
water = {"wheat": 1.2, "corn": 2.0, "soybeans": 1.5}  # acre-feet per acre
land, labour_hours, water_supply = 150, 620, 245

prob = pulp.LpProblem("crop_plan", pulp.LpMaximize)
acres = pulp.LpVariable.dicts("acres", crops, lowBound=0)  # fractional acres allowed

prob += pulp.lpSum(profit[c] * acres[c] for c in crops)
prob += pulp.lpSum(acres[c] for c in crops) <= land, "land"
prob += pulp.lpSum(labour[c] * acres[c] for c in crops) <= labour_hours, "labour"
prob += pulp.lpSum(water[c] * acres[c] for c in crops) <= water_supply, "water"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
