"""Reference model for sample-015-cutting-stock: paper rolls cut by patterns (IP)."""

import pulp

roll_width = 100  # cm
widths = [45, 36, 31, 14]  # cm
demand = {45: 12, 36: 18, 31: 20, 14: 24}


def patterns(remaining: int, index: int) -> list[tuple[int, ...]]:
    """Every way to cut one roll: a count per width (index onwards) that fits in remaining."""
    if index == len(widths):
        return [()]
    result = []
    for count in range(remaining // widths[index] + 1):
        rest = remaining - count * widths[index]
        result += [(count, *tail) for tail in patterns(rest, index + 1)]
    return result


cuts = [p for p in patterns(roll_width, 0) if any(p)]

prob = pulp.LpProblem("cutting_stock", pulp.LpMinimize)
rolls = pulp.LpVariable.dicts("rolls", range(len(cuts)), lowBound=0, cat="Integer")

prob += pulp.lpSum(rolls[k] for k in range(len(cuts)))
for i, w in enumerate(widths):
    prob += pulp.lpSum(cuts[k][i] * rolls[k] for k in range(len(cuts))) >= demand[w], f"demand_{w}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
