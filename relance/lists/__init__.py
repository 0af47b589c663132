"""Static contact lists and their salesperson."""
