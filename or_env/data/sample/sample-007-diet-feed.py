"""Reference model for sample-007-diet-feed: least-cost cattle feed blend (LP)."""

import pulp

ingredients = ["corn", "soybean_meal", "oats", "alfalfa"]
cost = {"corn": 0.30, "soybean_meal": 0.52, "oats": 0.25, "alfalfa": 0.20}  # $ per kg
protein = {"corn": 0.09, "soybean_meal": 0.44, "oats": 0.12, "alfalfa": 0.17}  # share of mass
fibre = {"corn": 0.02, "soybean_meal": 0.07, "oats": 0.11, "alfalfa": 0.25}  # share of mass
energy = {"corn": 3.3, "soybean_meal": 2.9, "oats": 2.6, "alfalfa": 2.2}  # Mcal per kg
batch = 1000  # kg

prob = pulp.LpProblem("feed_blend", pulp.LpMinimize)
kg = pulp.LpVariable.dicts("kg", ingredients, lowBound=0)

prob += pulp.lpSum(cost[i] * kg[i] for i in ingredients)
prob += pulp.lpSum(kg[i] for i in ingredients) == batch, "batch_size"
prob += pulp.lpSum(protein[i] * kg[i] for i in ingredients) >= 0.16 * batch, "min_protein"
prob += pulp.lpSum(fibre[i] * kg[i] for i in ingredients) <= 0.12 * batch, "max_fibre"
prob += pulp.lpSum(energy[i] * kg[i] for i in ingredients) >= 2.8 * batch, "min_energy"
prob += kg["oats"] <= 0.30 * batch, "max_oats"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
