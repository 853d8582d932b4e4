"""A district's roster in the OneRoster 1.1 / 1.2 data model: orgs, academic
sessions, courses, classes, people and enrollments, per tenant.

``csv_bundle`` reads and validates a OneRoster CSV zip (no I/O), ``store`` keeps the
rows (one transaction per import) and answers the read API the ClassLink-shaped
sandbox uses, ``accounts`` gives every rostered person a local account with the
``roster`` claims, ``removal`` takes a district out again, and ``demo`` builds a
small district (written with ``csv_writer``) to try everything with.
"""
