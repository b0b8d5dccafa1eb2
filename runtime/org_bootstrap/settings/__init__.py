"""Account settings: what each one reads, compares and writes through Account Management.

One module per setting; the engine (planning, jobs, pacing, reports, snapshots, drift, events)
serves them all.
"""
