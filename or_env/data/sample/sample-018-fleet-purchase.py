"""Reference model for sample-018-fleet-purchase: aircraft purchase with a large objective (IP)."""

import pulp

types = ["regional", "narrow_body", "wide_body"]
price = {"regional": 38_000_000, "narrow_body": 95_000_000, "wide_body": 210_000_000}
annual_profit = {"regional": 5_200_000, "narrow_body": 12_400_000, "wide_body": 26_900_000}
pilots = {"regional": 6, "narrow_body": 8, "wide_body": 12}
hangar_slots = {"regional": 1, "narrow_body": 2, "wide_body": 3}
budget, pilots_available, slots_available, max_wide_body = 1_200_000_000, 150, 30, 5

prob = pulp.LpProblem("fleet_purchase", pulp.LpMaximize)
buy = pulp.LpVariable.dicts("buy", types, lowBound=0, cat="Integer")

prob += pulp.lpSum(annual_profit[t] * buy[t] for t in types)
prob += pulp.lpSum(price[t] * buy[t] for t in types) <= budget, "budget"
prob += pulp.lpSum(pilots[t] * buy[t] for t in types) <= pilots_available, "pilots"
prob += pulp.lpSum(hangar_slots[t] * buy[t] for t in types) <= slots_available, "hangar"
prob += buy["wide_body"] <= max_wide_body, "max_wide_body"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
