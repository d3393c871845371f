"""Reference model for sample-011-set-cover: ambulance station siting (set cover IP)."""

import pulp

neighbourhoods = [f"N{i}" for i in range(1, 11)]
sites = {  # site: (cost in $k, neighbourhoods reached within 8 minutes)
    "S1": (40, ["N1", "N2", "N4"]),
    "S2": (35, ["N2", "N3", "N5"]),
    "S3": (50, ["N4", "N5", "N6", "N7"]),
    "S4": (30, ["N1", "N6", "N8"]),
    "S5": (45, ["N7", "N8", "N9", "N10"]),
    "S6": (25, ["N3", "N9"]),
    "S7": (38, ["N2", "N5", "N10"]),
}

prob = pulp.LpProblem("set_cover", pulp.LpMinimize)
build = pulp.LpVariable.dicts("build", sites, cat="Binary")

prob += pulp.lpSum(cost * build[s] for s, (cost, _) in sites.items())
for n in neighbourhoods:
    prob += pulp.lpSum(build[s] for s, (_, covered) in sites.items() if n in covered) >= 1, n

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
