"""Database layer: schema models, the embedded server, engines and migrations."""
