"""External data (M12): tax bureau, credit bureau (征信), court enforcement, social security,
housing provident fund, property registry, and the bank's own deposit, payroll and mortgage data.

Each source is a Protocol here (``ports``); ``integrations`` holds the sandboxes and, later, real
clients. ``gather`` calls the sources a product needs concurrently, under consent, with timeouts
and a cache; a source that fails or is slow makes the application a manual review, never a 500.
"""
