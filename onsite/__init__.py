"""Onsite: a secure on-site microdata analysis environment.

This package holds the glue shared by every area: settings (where state lives),
the `onsite` command line, the demo set-up and the database migrations.
"""
