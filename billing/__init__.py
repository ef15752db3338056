"""The usage ledger: tenants, keys, plans, prices, usage events and invoices."""
