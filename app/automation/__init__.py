"""Automations: the sync configuration file, rules, task templates, routing and enrichment."""
