"""Reference model for sample-020-unbounded-profit: only lower limits on chairs (LP)."""

import pulp

prob = pulp.LpProblem("unbounded_profit", pulp.LpMaximize)
chairs = pulp.LpVariable("chairs", lowBound=0)
tables = pulp.LpVariable("tables", lowBound=0)

prob += 30 * chairs + 70 * tables
prob += 2 * chairs + 5 * tables >= 100, "min_labour_hours"
prob += tables >= 10, "min_tables"
prob += tables <= 40, "max_tables"
prob += chairs >= 2 * tables, "chairs_vs_tables"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
