"""Who is calling: the doors customers and staff come in by (WeChat mini-program, bank apps,
partner platforms, the staff console) and the sessions they hold.

Every door resolves to one customer record in ``lending_core.customers`` (or one staff member);
this package never decides credit.
"""
