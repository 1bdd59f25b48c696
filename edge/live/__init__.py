"""The live path: capture thread -> face -> crop -> runner -> decision policy -> sinks (DESIGN §3, §7)."""
