"""Monthly token and spend budgets: each request reserves its worst case before it runs."""
