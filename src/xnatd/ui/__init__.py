"""The web interface: server-rendered pages (Jinja2) over the same services as the REST API."""
