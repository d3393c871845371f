"""Reference model for sample-014-portfolio: allocation with ratio limits (LP)."""

import pulp

assets = ["gov_bonds", "corp_bonds", "stocks", "real_estate", "venture"]
rate = {
    "gov_bonds": 0.042,
    "corp_bonds": 0.061,
    "stocks": 0.085,
    "real_estate": 0.073,
    "venture": 0.11,
}
total = 750_000

prob = pulp.LpProblem("portfolio", pulp.LpMaximize)
amount = pulp.LpVariable.dicts("amount", assets, lowBound=0)

prob += pulp.lpSum(rate[a] * amount[a] for a in assets)
prob += pulp.lpSum(amount[a] for a in assets) == total, "invest_all"
prob += amount["gov_bonds"] >= 0.25 * total, "min_gov_bonds"
prob += amount["stocks"] + amount["venture"] <= 0.40 * total, "max_equity"
prob += amount["venture"] <= 0.25 * amount["stocks"], "venture_vs_stocks"
prob += amount["corp_bonds"] <= amount["gov_bonds"], "corp_vs_gov"
prob += amount["real_estate"] >= 50_000, "min_real_estate"
prob += amount["real_estate"] <= 0.20 * total, "max_real_estate"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
