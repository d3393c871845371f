"""Reference model for sample-006-assignment: translators to documents (assignment IP)."""

import pulp

translators = ["Ana", "Ben", "Chen", "Dina", "Emre"]
documents = ["contract", "manual", "brochure", "report", "website"]
hours = {  # hours translator t needs for document d
    "Ana": [14, 9, 12, 8, 16],
    "Ben": [11, 10, 15, 13, 9],
    "Chen": [13, 12, 8, 11, 14],
    "Dina": [10, 15, 13, 9, 12],
    "Emre": [12, 11, 14, 10, 13],
}
time = {(t, d): hours[t][j] for t in translators for j, d in enumerate(documents)}

prob = pulp.LpProblem("assignment", pulp.LpMinimize)
assign = pulp.LpVariable.dicts("assign", time.keys(), cat="Binary")

prob += pulp.lpSum(time[k] * assign[k] for k in time)
for t in translators:
    prob += pulp.lpSum(assign[t, d] for d in documents) == 1, f"one_doc_{t}"
for d in documents:
    prob += pulp.lpSum(assign[t, d] for t in translators) == 1, f"one_translator_{d}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
