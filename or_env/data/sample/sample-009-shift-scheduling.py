"""Reference model for sample-009-shift-scheduling: 24-hour staffing with 8-hour shifts (IP)."""

import pulp

# Six 4-hour periods; period p starts at 4*p o'clock.
periods = range(6)
required = [6, 9, 20, 17, 14, 10]
# A shift starting at period s covers periods s and s+1 (the 20:00 shift wraps to 04:00).
shifts = range(6)
pay = {s: 200 if s in (0, 1, 5) else 160 for s in shifts}  # night shifts: 00:00, 04:00, 20:00

prob = pulp.LpProblem("shift_scheduling", pulp.LpMinimize)
staff = pulp.LpVariable.dicts("staff", shifts, lowBound=0, cat="Integer")

prob += pulp.lpSum(pay[s] * staff[s] for s in shifts)
for p in periods:
    covering = [s for s in shifts if p in (s, (s + 1) % 6)]
    prob += pulp.lpSum(staff[s] for s in covering) >= required[p], f"cover_{p}"

prob.solve(pulp.HiGHS(msg=False))
status = pulp.LpStatus[prob.status]
if status == "Optimal":
    print(f"OBJECTIVE: {pulp.value(prob.objective)}")
else:
    print(f"STATUS: {status.lower()}")
