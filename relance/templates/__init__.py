"""Message templates: Jinja2 in a sandbox, SMS length."""
