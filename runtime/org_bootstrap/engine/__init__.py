"""The engine every account setting shares: targeting, planning, jobs, pacing, reconciling, stores."""
