"""The composition root and entry points: ``create_app()`` wires settings, the database, Redis
and providers; ``server.cli`` runs migrations, demo data, the API and the workers."""
