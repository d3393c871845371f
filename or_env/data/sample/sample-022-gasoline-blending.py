"""Reference model for sample-022-gasoline-blending: components into two grades (LP)."""

import pulp

components = ["alkylate", "reformate", "straight_run"]
octane = {"alkylate": 98, "reformate": 94, "straight_run": 84}
vapour_pressure = {"alkylate": 5, "reformate": 8, "straight_run": 11}  # psi
available = {"alkylate": 4000, "reformate": 5000, "straight_run": 6000}  # barrels
cost = {"alkylate": 62, "reformate": 55, "straight_run": 42}  # $ per barrel

grades = ["regular", "premium"]
min_octane = {"regular": 88, "premium": 93}
max_vapour = {"regular": 9, "premium": 7}
price = {"regular": 68, "premium": 80}  # $ per barrel
max_sales = {"regular": 8000, "premium": 5000}  # barrels

prob = pulp.LpProblem("gasoline_blending", pulp.LpMaximize)
bbl = pulp.LpVariable.dicts("bbl", (components, grades), lowBound=0)

prob += pulp.lpSum((price[g] - cost[c]) * bbl[c][g] for c in components for g in grades)
for c in components:
    prob += pulp.lpSum(bbl[c][g] for g in grades) <= available[c], f"avail_{c}"
for g in grades:
    made = pulp.lpSum(bbl[c][g] for c in components)
    prob += made <= max_sales[g], f"sales_{g}"
    # Volume-weighted blending rules, linearised by multiplying through by the volume made.
    prob += (
        pulp.lpSum(octane[c] * bbl[c][g] for c in components) >= min_octane[g] * made,
        f"oct_{g}",
    )
    prob += (
        pulp.lpSum(vapour_pressure[c] * bbl[c][g] for c in components) <= max_vapour[g] * made,
        f"rvp_{g}",
    )

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
