"""The UI's blueprints, one per page family, plus the error pages."""
